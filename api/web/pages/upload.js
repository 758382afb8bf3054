// Upload (analyst+): a CSV (header row), NDJSON or JSON-array file of logs, dropped or chosen,
// sent to /api/logs/upload with a progress bar; then what was accepted and, record by record,
// what was not and why.

const MAX_BYTES = 100 * 1024 * 1024;
const ACCEPT = '.csv,.ndjson,.jsonl,.json,text/csv,application/json,application/x-ndjson';

export default async function upload(view, ui) {
  const { el, fmt } = ui;
  const input = el('input', { type: 'file', accept: ACCEPT, id: 'upload-file', class: 'visually-hidden', tabindex: -1 });
  const zone = el('div', {
    class: 'dropzone',
    role: 'button',
    tabindex: 0,
    'aria-describedby': 'upload-help',
    'aria-label': 'Choose a file of logs to upload, or drop one here',
  },
  el('p', {}, el('strong', {}, 'Drop a file here'), ' or press to choose one'),
  el('p', { class: 'muted', id: 'upload-help' }, 'CSV with a header row, NDJSON, or a JSON array; up to 100 MB. Each record is checked; valid ones are kept even when others are refused.'));
  const progress = el('progress', { max: 100, value: 0, 'aria-label': 'Upload progress', hidden: true });
  const progressText = el('p', { class: 'muted', 'aria-live': 'polite' });
  const cancel = el('button', { type: 'button', hidden: true }, 'Cancel');
  const report = el('section', { id: 'upload-report', 'aria-live': 'polite' });
  let running = null;

  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Upload logs')),
    el('section', { class: 'card' }, zone, input, el('div', { class: 'toolbar' }, progress, cancel), progressText),
    report);

  const choose = () => {
    if (!running) input.click();
  };
  zone.addEventListener('click', choose);
  zone.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      choose();
    }
  });
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const file = event.dataTransfer?.files?.[0];
    if (file) send(file);
  });
  input.addEventListener('change', () => {
    if (input.files[0]) send(input.files[0]);
    input.value = '';
  });
  cancel.addEventListener('click', () => running?.abort());
  ui.onCleanup(() => running?.abort());

  function showReport(file, answer) {
    const errors = answer.errors || [];
    const summary = el('div', { class: answer.rejected > 0 ? 'notice' : 'ok', role: 'status' },
      el('strong', {}, `${file.name}: `),
      el('span', { 'data-accepted': answer.accepted }, `${fmt.number(answer.accepted)} accepted`), ', ',
      el('span', { 'data-rejected': answer.rejected }, `${fmt.number(answer.rejected)} rejected`),
      answer.lines !== undefined ? ` of ${fmt.number(answer.lines)} lines` : '',
      answer.format ? ` (${answer.format})` : '', '.');
    const parts = [summary];
    if (answer.accepted > 0 && ui.pages.includes('search')) {
      parts.push(el('p', {}, 'The accepted records are searchable within seconds: ', el('a', { href: '#/search?range=1h' }, 'search the last hour'), '.'));
    }
    if (errors.length > 0) {
      parts.push(
        el('h2', {}, 'Refused records'),
        answer.rejected > errors.length ? el('p', { class: 'muted' }, `The first ${errors.length} of ${fmt.number(answer.rejected)} are listed.`) : null,
        el('div', { class: 'table-wrap' }, el('table', { id: 'upload-errors' },
          el('thead', {}, el('tr', {}, el('th', { class: 'num' }, 'Record'), el('th', {}, 'Field'), el('th', {}, 'Problem'), el('th', {}, 'Reason'))),
          el('tbody', {}, errors.map((error) => el('tr', {},
            el('td', { class: 'num' }, error.record), el('td', {}, error.field || '–'), el('td', {}, error.code), el('td', {}, error.reason)))))));
    }
    report.replaceChildren(el('div', { class: 'card' }, parts));
  }

  async function send(file) {
    report.replaceChildren();
    if (file.size > MAX_BYTES) {
      report.replaceChildren(el('div', { class: 'error', role: 'alert' }, `${file.name} is ${fmt.number(Math.ceil(file.size / 1048576))} MB; the limit is 100 MB. Split it, or send it to /api/logs/ingest in parts.`));
      return;
    }
    let token;
    try {
      token = await ui.accessToken();
    } catch {
      return;
    }
    const form = new FormData();
    form.append('file', file, file.name);
    const request = new XMLHttpRequest();
    running = request;
    progress.hidden = false;
    cancel.hidden = false;
    progress.value = 0;
    progressText.textContent = `Sending ${file.name}…`;
    zone.setAttribute('aria-disabled', 'true');
    const finished = new Promise((resolve) => {
      request.upload.addEventListener('progress', (event) => {
        if (!event.lengthComputable) return;
        progress.value = Math.round((event.loaded / event.total) * 100);
        progressText.textContent = `Sending ${file.name}: ${progress.value}%`;
      });
      request.upload.addEventListener('load', () => {
        progress.value = 100;
        progressText.textContent = `${file.name} sent; checking its records…`;
      });
      request.addEventListener('loadend', resolve);
    });
    request.open('POST', '/api/logs/upload');
    request.setRequestHeader('authorization', `Bearer ${token}`);
    request.responseType = 'json';
    request.send(form);
    await finished;
    running = null;
    cancel.hidden = true;
    zone.removeAttribute('aria-disabled');
    if (!view.isConnected) return;
    const answer = request.response;
    if (request.status === 0) {
      progressText.textContent = 'The upload was cancelled or the connection failed; nothing was confirmed.';
      return;
    }
    if (request.status === 401) {
      // Through the API helper, which sends the user to log in when the session is over.
      await ui.api('/api/auth/verify').catch(() => {});
      progressText.textContent = 'Log in again, then send the file again.';
      return;
    }
    if (request.status >= 200 && request.status < 300 && answer) {
      progressText.textContent = `${file.name}: done.`;
      showReport(file, answer);
      return;
    }
    const error = answer?.error || { message: `the server answered ${request.status}` };
    progressText.textContent = '';
    const retry = request.getResponseHeader('retry-after');
    report.replaceChildren(el('div', { class: 'error', role: 'alert' },
      `${file.name} was not accepted: ${error.message}`,
      retry ? ` Try again in ${retry} s.` : '', ` (${request.status} ${error.code || ''})`));
  }

  zone.focus();
}
