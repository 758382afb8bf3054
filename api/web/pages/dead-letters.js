// Dead letters (admin): the records the pipeline could not process, newest first, with where
// they failed and why, and the original record.

export default async function deadLetters(view, ui) {
  const { el, fmt } = ui;
  const limitSelect = el('select', { name: 'limit', 'aria-label': 'How many' },
    [50, 200, 1000].map((limit) => el('option', { value: limit }, `Newest ${limit}`)));
  const status = el('p', { class: 'muted', 'aria-live': 'polite' });
  const body = el('tbody');
  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Dead letters'),
      el('div', { class: 'toolbar' }, limitSelect, el('button', { type: 'button', onclick: () => load() }, 'Reload'))),
    el('section', { class: 'card' }, status,
      el('div', { class: 'table-wrap' }, el('table', { id: 'dead-letters' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Failed'), el('th', {}, 'Source'), el('th', {}, 'Stage'), el('th', {}, 'Problem'),
          el('th', {}, 'Field'), el('th', {}, 'Reason'), el('th', {}, 'Record'))),
        body))));
  limitSelect.addEventListener('change', () => load());

  async function load() {
    status.textContent = 'Loading…';
    try {
      const answer = await ui.api('/api/dead-letters', { query: { limit: limitSelect.value } });
      if (!view.isConnected) return;
      status.textContent = answer.total === 0
        ? 'No dead letters: every record so far was processed.'
        : `${fmt.number(answer.dead_letters.length)} of ${fmt.number(answer.total)} dead letters, newest first.`;
      body.replaceChildren(...answer.dead_letters.map((letter) => el('tr', {},
        el('td', { class: 'time' }, fmt.time(letter.failed_at)),
        el('td', {}, letter.source),
        el('td', {}, letter.stage),
        el('td', {}, el('span', { class: 'badge bad' }, letter.code)),
        el('td', {}, letter.field || '–'),
        el('td', { class: 'message' }, letter.reason),
        el('td', {}, el('details', {}, el('summary', {}, letter.id || 'record'), el('pre', { class: 'doc' }, letter.record))))));
    } catch (error) {
      if (view.isConnected) status.replaceChildren(ui.errorBox(error));
    }
  }

  await load();
}
