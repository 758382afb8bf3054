// Search (analyst+): the query syntax, filters, a time range, sort, highlighted hits with every
// field a click away, pages at any depth (search_after), saved and recent searches, and export
// as CSV or NDJSON. The search lives in the address, so reload, back and links work.

const LOG_TYPES = ['transaction', 'error', 'user_behavior', 'performance', 'fraud'];
const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'];
const SORTS = [
  ['newest', 'Newest first', '@timestamp', 'desc'],
  ['oldest', 'Oldest first', '@timestamp', 'asc'],
  ['amount', 'Largest amount', 'amount', 'desc'],
  ['fraud', 'Highest fraud score', 'fraud.score', 'desc'],
  ['slowest', 'Slowest response', 'response_time', 'desc'],
];
const TEXT_FILTERS = [
  ['service', 'Service'],
  ['status', 'Status'],
  ['payment_method', 'Payment method'],
  ['country', 'Country'],
  ['user_id', 'User id'],
];
const NUMBER_FILTERS = [
  ['min_amount', 'Amount from'],
  ['max_amount', 'Amount to'],
  ['min_fraud_score', 'Fraud score from'],
  ['max_fraud_score', 'Fraud score to'],
];
const FILTER_KEYS = ['log_type', 'level', ...TEXT_FILTERS.map(([key]) => key), ...NUMBER_FILTERS.map(([key]) => key)];
const PAGE_SIZES = [20, 50, 100];
const EXPORT_LIMIT = 1_000_000;

/** What a hit says in one line, when it has no message of its own. */
function summary(hit) {
  const parts = {
    transaction: [hit.transaction_id, hit.amount !== undefined ? `${hit.amount} ${hit.currency || ''}` : null, hit.status, hit.product_name],
    error: [hit.error_code, hit.error_message],
    user_behavior: [hit.action, hit.page, hit.user_id],
    performance: [hit.endpoint, hit.response_time !== undefined ? `${hit.response_time} ms` : null, hit.status_code],
    fraud: [hit.transaction_id, hit.fraud_score !== undefined ? `score ${hit.fraud_score}` : null],
  }[hit.log_type] || [];
  return parts.filter((part) => part !== undefined && part !== null && part !== '').join(' · ');
}

export default async function search(view, ui) {
  const { el, fmt } = ui;
  const state = {
    query: ui.params.query || '',
    filters: Object.fromEntries(FILTER_KEYS.filter((key) => ui.params[key]).map((key) => [key, ui.params[key]])),
    range: ui.rangeOf(ui.params),
    sort: SORTS.some(([key]) => key === ui.params.sort) ? ui.params.sort : 'newest',
    size: PAGE_SIZES.includes(Number(ui.params.size)) ? Number(ui.params.size) : 20,
  };
  let cursors = []; // search_after of each page before the current one
  let current = null; // the last answer
  let currentAfter = null;
  let shown = null; // the search whose hits are shown: what turning pages and export use

  /** The search as the API takes it (no paging). */
  function request() {
    const [, , sort, order] = SORTS.find(([key]) => key === state.sort);
    const body = { ...state.range, sort, order };
    if (state.query.trim()) body.query = state.query.trim();
    for (const [key, value] of Object.entries(state.filters)) {
      if (value === '' || value === undefined) continue;
      body[key] = NUMBER_FILTERS.some(([name]) => name === key) ? Number(value) : value;
    }
    return body;
  }

  function saveParams() {
    const params = { query: state.query, ...state.filters, sort: state.sort === 'newest' ? undefined : state.sort, size: state.size === 20 ? undefined : state.size };
    if (state.range.range || state.range.from || state.range.to) Object.assign(params, state.range);
    else params.range = 'all';
    ui.setParams(params);
  }

  // ----- the form
  const queryInput = el('input', {
    type: 'search',
    name: 'query',
    value: state.query,
    'aria-label': 'Search query',
    placeholder: 'payment timeout   "gateway timed out"   level:error AND amount:>100',
  });
  const filterInputs = {};
  filterInputs.log_type = el('select', { name: 'log_type' }, el('option', { value: '' }, 'Any'),
    LOG_TYPES.map((type) => el('option', { value: type, selected: state.filters.log_type === type }, type)));
  filterInputs.level = el('select', { name: 'level' }, el('option', { value: '' }, 'Any'),
    LEVELS.map((level) => el('option', { value: level, selected: state.filters.level === level }, level)));
  const services = el('datalist', { id: 'known-services' });
  for (const [key] of TEXT_FILTERS) {
    filterInputs[key] = el('input', { name: key, value: state.filters[key] || '', list: key === 'service' ? 'known-services' : undefined });
  }
  for (const [key] of NUMBER_FILTERS) {
    filterInputs[key] = el('input', { name: key, type: 'number', step: 'any', min: 0, value: state.filters[key] || '' });
  }
  const labels = { log_type: 'Log type', level: 'Level', ...Object.fromEntries([...TEXT_FILTERS, ...NUMBER_FILTERS]) };
  const sortSelect = el('select', { name: 'sort', 'aria-label': 'Sort' },
    SORTS.map(([key, label]) => el('option', { value: key, selected: key === state.sort }, label)));
  const sizeSelect = el('select', { name: 'size', 'aria-label': 'Hits per page' },
    PAGE_SIZES.map((size) => el('option', { value: size, selected: size === state.size }, `${size} per page`)));
  const activeFilters = () => Object.values(state.filters).filter((value) => value !== '').length;
  const filtersBox = el('details', { class: 'filters-box', open: activeFilters() > 0 },
    el('summary', {}, 'Filters'),
    el('div', { class: 'filters' }, FILTER_KEYS.map((key) => el('label', { class: 'field' }, el('span', {}, labels[key]), filterInputs[key]))),
    el('p', {}, el('button', { type: 'button', class: 'link', onclick: () => {
      for (const input of Object.values(filterInputs)) input.value = '';
      run();
    } }, 'Clear filters')));
  const form = el('form', { role: 'search', class: 'card' },
    el('div', { class: 'query-row' }, queryInput, el('button', { type: 'submit', class: 'primary' }, 'Search')),
    el('div', { class: 'toolbar' },
      ui.rangePicker(state.range, (next) => { state.range = next; run(); }, { allowAll: true }),
      sortSelect, sizeSelect),
    filtersBox,
    services);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  sortSelect.addEventListener('change', () => run());
  sizeSelect.addEventListener('change', () => run());

  // ----- results
  const status = el('div', { 'aria-live': 'polite', class: 'results-status' });
  const resultsBody = el('tbody');
  const results = el('div', { class: 'table-wrap' }, el('table', { id: 'results' },
    el('thead', {}, el('tr', {}, el('th', {}, el('span', { class: 'visually-hidden' }, 'Details')), el('th', {}, 'Time'), el('th', {}, 'Type'),
      el('th', {}, 'Level'), el('th', {}, 'Service'), el('th', {}, 'Message'))),
    resultsBody));
  const previous = el('button', { type: 'button', onclick: () => turn(-1) }, '← Previous');
  const next = el('button', { type: 'button', onclick: () => turn(1) }, 'Next →');
  const pageLabel = el('span', { class: 'muted' });
  const pager = el('div', { class: 'pager' }, previous, pageLabel, next);

  // ----- saved, recent, export
  const saveName = el('input', { name: 'save-name', 'aria-label': 'Name of the saved search', placeholder: 'Name this search' });
  const saveForm = el('form', { class: 'toolbar' }, saveName, el('button', { type: 'submit' }, 'Save'));
  const savedList = el('ul', { class: 'side-list', id: 'saved-searches' });
  const recentList = el('ul', { class: 'side-list', id: 'recent-searches' });
  const exportFormat = el('select', { 'aria-label': 'Export format', name: 'export-format' },
    el('option', { value: 'csv' }, 'CSV'), el('option', { value: 'ndjson' }, 'NDJSON'));
  const exportButton = el('button', { type: 'button', id: 'export', onclick: () => exportHits() }, 'Export');
  const exportStatus = el('p', { class: 'muted', 'aria-live': 'polite' });

  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Search')),
    el('div', { class: 'grid' },
      el('div', { class: 'span-8 stack' }, form, el('section', { class: 'card', 'aria-label': 'Results' }, status, results, pager)),
      el('aside', { class: 'span-4 stack' },
        el('section', { class: 'card' }, el('h2', {}, 'Export'),
          el('div', { class: 'toolbar' }, exportFormat, exportButton), exportStatus),
        el('section', { class: 'card' }, el('h2', {}, 'Save this search'), saveForm),
        el('section', { class: 'card' }, el('h2', {}, 'Saved searches'), savedList),
        el('section', { class: 'card' }, el('h2', {}, 'Recent searches'), recentList))));

  function readForm() {
    state.query = queryInput.value;
    for (const key of FILTER_KEYS) state.filters[key] = filterInputs[key].value.trim();
    state.sort = sortSelect.value;
    state.size = Number(sizeSelect.value);
  }

  function row(hit) {
    const fragments = hit._highlight ? [...(hit._highlight.message || []), ...(hit._highlight.error_message || [])] : [];
    const message = el('td', { class: 'message' });
    if (fragments.length > 0) {
      fragments.forEach((fragment, i) => {
        if (i > 0) message.append(' … ');
        message.append(ui.highlighted(fragment));
      });
    } else {
      message.append(hit.message || hit.error_message || summary(hit));
    }
    const document = { ...hit };
    delete document._highlight;
    const detail = el('tr', { class: 'detail', hidden: true },
      el('td', { colspan: 6 }, el('pre', { class: 'doc' }, JSON.stringify(document, null, 2))));
    const toggle = el('button', {
      type: 'button',
      class: 'link',
      'aria-expanded': 'false',
      'aria-label': `All fields of ${hit._id}`,
      onclick: () => {
        detail.hidden = !detail.hidden;
        toggle.setAttribute('aria-expanded', String(!detail.hidden));
        toggle.textContent = detail.hidden ? '▸' : '▾';
      },
    }, '▸');
    return [
      el('tr', { class: 'hit', 'data-id': hit._id },
        el('td', {}, toggle),
        el('td', { class: 'time' }, fmt.time(hit['@timestamp'] || hit.timestamp)),
        el('td', {}, hit.log_type || '–'),
        el('td', {}, hit.level ? el('span', { class: `badge level-${hit.level}` }, hit.level) : '–'),
        el('td', {}, hit.service || '–'),
        message),
      detail,
    ];
  }

  /** A total as the server counted it: "10,000+" when counting stopped there. */
  function totalText(answer) {
    return fmt.number(answer.total) + (answer.total_relation === 'gte' ? '+' : '');
  }

  /** Counts every match of the search shown, for a total that stopped at "10,000+". */
  async function countAll() {
    const shownNow = shown;
    try {
      const answer = await ui.api('/api/logs/search', { method: 'POST', body: { ...shownNow, size: 0, track_total_hits: true } });
      if (!view.isConnected || shown !== shownNow || !current) return;
      current = { ...current, total: answer.total, total_relation: answer.total_relation };
      show(current, null);
    } catch (error) {
      ui.toast(error.message, 'error');
    }
  }

  function show(answer, took) {
    current = answer;
    const atLeast = answer.total_relation === 'gte';
    const first = cursors.length * state.size + 1;
    const last = cursors.length * state.size + answer.hits.length;
    const tookText = took === null ? '' : ` · ${took} ms`;
    status.replaceChildren(answer.total === 0 && !atLeast
      ? el('p', { class: 'empty' }, `No events match, ${ui.describeRange(state.range).toLowerCase()}.`)
      : el('p', {}, el('strong', { id: 'total' }, totalText(answer)), ` events · ${ui.describeRange(state.range)}${tookText}`,
        ...(atLeast ? [' · ', el('button', { type: 'button', class: 'link', id: 'count-all', onclick: countAll }, 'count all')] : [])));
    resultsBody.replaceChildren(...answer.hits.flatMap(row));
    pageLabel.textContent = answer.total === 0 && !atLeast ? '' : `${fmt.number(first)}–${fmt.number(last)} of ${totalText(answer)}`;
    previous.disabled = cursors.length === 0;
    next.disabled = !answer.next_search_after || (!atLeast && last >= answer.total);
    exportButton.disabled = answer.total === 0 && !atLeast;
  }

  async function fetchPage(after) {
    const body = { ...shown, size: state.size, highlight: true };
    if (after) body.search_after = after;
    const started = performance.now();
    status.replaceChildren(el('p', { class: 'loading' }, 'Searching…'));
    try {
      const answer = await ui.api('/api/logs/search', { method: 'POST', body });
      if (!view.isConnected) return;
      currentAfter = after;
      show(answer, Math.round(performance.now() - started));
      view.dataset.searches = String(Number(view.dataset.searches || 0) + 1);
    } catch (error) {
      if (view.isConnected) status.replaceChildren(ui.errorBox(error));
    }
  }

  async function run() {
    readForm();
    saveParams();
    shown = request();
    cursors = [];
    await fetchPage(null);
    loadRecent();
  }

  async function turn(step) {
    if (step > 0 && current?.next_search_after) {
      cursors.push(currentAfter);
      await fetchPage(current.next_search_after);
    } else if (step < 0 && cursors.length > 0) {
      await fetchPage(cursors.pop());
    }
    results.scrollIntoView({ block: 'start' });
  }

  /** Runs a saved or recent search: through the address, like any other. */
  function load(searchBody) {
    const params = new URLSearchParams();
    if (searchBody.query) params.set('query', searchBody.query);
    for (const key of FILTER_KEYS) if (searchBody[key] !== undefined) params.set(key, searchBody[key]);
    if (searchBody.range) params.set('range', searchBody.range);
    else if (searchBody.from || searchBody.to) {
      if (searchBody.from) params.set('from', searchBody.from);
      if (searchBody.to) params.set('to', searchBody.to);
    } else params.set('range', 'all');
    const sort = SORTS.find(([, , field, order]) => field === (searchBody.sort || '@timestamp') && order === (searchBody.order || 'desc'));
    if (sort && sort[0] !== 'newest') params.set('sort', sort[0]);
    ui.navigate(`#/search?${params}`);
  }

  function describe(searchBody) {
    const parts = [searchBody.query ? `“${searchBody.query}”` : 'everything'];
    for (const key of FILTER_KEYS) if (searchBody[key] !== undefined) parts.push(`${key}=${searchBody[key]}`);
    parts.push(searchBody.range || (searchBody.from ? 'custom range' : 'all time'));
    return parts.join(' · ');
  }

  async function loadSaved() {
    try {
      const answer = await ui.api('/api/logs/search/saved', { query: { limit: 50 } });
      savedList.replaceChildren(...(answer.saved_searches.length === 0
        ? [el('li', { class: 'empty' }, 'None yet.')]
        : answer.saved_searches.map((saved) => el('li', {},
          el('button', { type: 'button', class: 'link', title: describe(saved.search), onclick: () => load(saved.search) }, saved.name),
          el('button', { type: 'button', class: 'link danger', 'aria-label': `Delete saved search ${saved.name}`, onclick: async () => {
            try {
              await ui.api(`/api/logs/search/saved/${encodeURIComponent(saved.id)}`, { method: 'DELETE' });
              ui.toast(`Deleted “${saved.name}”.`);
              loadSaved();
            } catch (error) {
              ui.toast(error.message, 'error');
            }
          } }, 'Delete')))));
    } catch (error) {
      savedList.replaceChildren(el('li', {}, ui.errorBox(error)));
    }
  }

  async function loadRecent() {
    try {
      const answer = await ui.api('/api/logs/search/recent');
      recentList.replaceChildren(...(answer.searches.length === 0
        ? [el('li', { class: 'empty' }, 'None yet.')]
        : answer.searches.slice(0, 10).map((recent) => el('li', {},
          el('button', { type: 'button', class: 'link', onclick: () => load(recent.search) }, describe(recent.search)),
          el('span', { class: 'muted' }, totalText(recent))))));
    } catch (error) {
      recentList.replaceChildren(el('li', {}, ui.errorBox(error)));
    }
  }

  saveForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    readForm();
    const name = saveName.value.trim();
    if (!name) {
      saveName.focus();
      ui.toast('Give the search a name first.', 'error');
      return;
    }
    try {
      await ui.api('/api/logs/search/save', { method: 'POST', body: { name, search: request() } });
      saveName.value = '';
      ui.toast(`Saved “${name}”.`);
      loadSaved();
    } catch (error) {
      ui.toast(error.message, 'error');
    }
  });

  /** Downloads every hit of the search shown (up to the server's limit of a million). */
  async function exportHits() {
    if (!shown || !current) return;
    const format = exportFormat.value;
    // A total counted only so far is no count of what the export will hold.
    const known = current.total_relation !== 'gte';
    const limit = known ? Math.min(current.total, EXPORT_LIMIT) : EXPORT_LIMIT;
    exportButton.disabled = true;
    exportStatus.textContent = known ? `Exporting ${fmt.number(limit)} events…` : 'Exporting the matching events…';
    try {
      const response = await ui.api('/api/logs/search/export', { method: 'POST', query: { format, limit }, body: shown, raw: true });
      const blob = await response.blob();
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
      ui.download(blob, `sluice-search-${stamp}.${format}`);
      const size = `${fmt.number(Math.ceil(blob.size / 1024))} KB`;
      exportStatus.textContent = (known ? `Downloaded ${fmt.number(limit)} events (${size})` : `Downloaded the matching events, up to a million (${size})`)
        + (known && current.total > EXPORT_LIMIT ? `: the first million of ${fmt.number(current.total)}; narrow the search for the rest.` : '.');
    } catch (error) {
      exportStatus.replaceChildren(ui.errorBox(error));
    } finally {
      exportButton.disabled = false;
    }
  }

  ui.api('/api/logs/search/services', { query: { limit: 200 } })
    .then((answer) => services.replaceChildren(...answer.services.map((item) => el('option', { value: item.service }))))
    .catch(() => {
      // Suggestions only: the field still takes any service.
    });
  loadSaved();
  await run();
  queryInput.focus();
}
