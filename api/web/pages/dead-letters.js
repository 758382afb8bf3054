// Dead letters (admin): the records the pipeline could not process, newest first, with where
// they failed and why, and the original record; filtered by stage and reason, and sent through
// the processor again (once the cause is fixed) or purged, each counted before it is done.

const STAGES = ['validate', 'document', 'process', 'index'];

export default async function deadLetters(view, ui) {
  const { el, fmt } = ui;
  const limitSelect = el('select', { name: 'limit', 'aria-label': 'How many' },
    [50, 200, 1000].map((limit) => el('option', { value: limit }, `Newest ${limit}`)));
  const stageSelect = el('select', { name: 'stage', 'aria-label': 'Stage' },
    el('option', { value: '' }, 'Every stage'), ...STAGES.map((stage) => el('option', { value: stage }, stage)));
  const codeInput = el('input', { name: 'code', placeholder: 'Reason code', 'aria-label': 'Reason code' });
  const status = el('p', { class: 'muted', 'aria-live': 'polite' });
  const body = el('tbody');
  const replayButton = el('button', { type: 'button', onclick: () => act('replay') }, 'Replay…');
  const purgeButton = el('button', { type: 'button', class: 'danger', onclick: () => act('purge') }, 'Purge…');
  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Dead letters'),
      el('div', { class: 'toolbar' }, stageSelect, codeInput, limitSelect,
        el('button', { type: 'button', onclick: () => load() }, 'Reload'), replayButton, purgeButton)),
    el('section', { class: 'card' }, status,
      el('div', { class: 'table-wrap' }, el('table', { id: 'dead-letters' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Failed'), el('th', {}, 'Source'), el('th', {}, 'Stage'), el('th', {}, 'Problem'),
          el('th', {}, 'Field'), el('th', {}, 'Reason'), el('th', {}, 'Record'))),
        body))));
  for (const control of [limitSelect, stageSelect]) control.addEventListener('change', () => load());
  codeInput.addEventListener('change', () => load());

  /** The filter shown, as the API takes it. */
  function filter() {
    const chosen = {};
    if (stageSelect.value) chosen.stage = stageSelect.value;
    if (codeInput.value.trim()) chosen.code = codeInput.value.trim();
    return chosen;
  }

  async function load() {
    status.textContent = 'Loading…';
    try {
      const answer = await ui.api('/api/dead-letters', { query: { limit: limitSelect.value, ...filter() } });
      if (!view.isConnected) return;
      status.textContent = answer.total === 0
        ? 'No dead letters here.'
        : `${fmt.number(answer.dead_letters.length)} of ${fmt.number(answer.total)} dead letters, newest first.`;
      body.replaceChildren(...answer.dead_letters.map((letter) => el('tr', { 'data-letter-id': letter.letter_id },
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

  /** Replays or purges what the filter shows: counts first, asks, then does it. */
  async function act(action) {
    const verb = action === 'replay' ? 'Replay' : 'Purge';
    const done = action === 'replay' ? 'replayed' : 'purged';
    try {
      const counted = await ui.api(`/api/dead-letters/${action}`, { method: 'POST', body: { ...filter(), dry_run: true } });
      if (counted.matched === 0) {
        ui.toast(`No dead letters to ${action}.`);
        return;
      }
      const what = `${fmt.number(counted.matched)} dead letter${counted.matched === 1 ? '' : 's'}`;
      const consequence = action === 'replay'
        ? 'Their records go through validation and the processor again, keeping their ids.'
        : 'They leave the list for good.';
      if (!confirm(`${verb} ${what}? ${consequence}`)) return;
      const answer = await ui.api(`/api/dead-letters/${action}`, { method: 'POST', body: filter() });
      const more = answer.remaining > 0 ? ` ${fmt.number(answer.remaining)} more match: ${action} again for them.` : '';
      ui.toast(`${fmt.number(answer.settled)} dead letter${answer.settled === 1 ? '' : 's'} ${done}.${more}`);
      await load();
    } catch (error) {
      ui.toast(`${verb}: ${error.message}`, 'error');
    }
  }

  await load();
}
