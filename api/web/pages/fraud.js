// Fraud (analyst+): how much was scored and flagged, by indicator, country and time, and the
// suspicious events themselves with their score and indicators, each reviewed in place
// (confirmed or a false positive, with a note).

const STATUSES = [['new', 'New'], ['confirmed', 'Confirmed'], ['false_positive', 'False positive']];

export default async function fraud(view, ui) {
  const { el, fmt } = ui;
  let range = ui.rangeOf(ui.params);
  let minScore = ui.params.min_score || '';
  let indicator = ui.params.indicator || '';
  let after = null;

  const kpis = el('section', { class: 'kpis', 'aria-label': 'Fraud figures' });
  const status = el('div');
  const canvases = {
    indicators: el('canvas', { id: 'chart-indicators', role: 'img', 'aria-label': 'Detections by indicator' }),
    timeline: el('canvas', { id: 'chart-fraud-timeline', role: 'img', 'aria-label': 'Detections over time' }),
  };
  const countries = el('tbody');
  const indicatorSelect = el('select', { name: 'indicator', 'aria-label': 'Indicator' }, el('option', { value: '' }, 'Any indicator'));
  const scoreInput = el('input', { name: 'min_score', type: 'number', min: 0, max: 100, step: 1, value: minScore, placeholder: 'flagged', 'aria-label': 'Minimum score' });
  const filterForm = el('form', { class: 'toolbar' },
    el('label', {}, 'Score from ', scoreInput), indicatorSelect, el('button', { type: 'submit' }, 'Apply'));
  const alertsBody = el('tbody');
  const alertsStatus = el('p', { class: 'muted', 'aria-live': 'polite' });
  const more = el('button', { type: 'button', hidden: true, onclick: () => loadAlerts(true) }, 'Load more');

  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Fraud'),
      ui.rangePicker(range, (next) => {
        range = next; // without allowAll, always a quick range or from and to
        saveParams();
        loadStats();
        loadAlerts(false);
      })),
    status,
    kpis,
    el('div', { class: 'grid' },
      el('section', { class: 'card span-4' }, el('h2', {}, 'By indicator'), el('div', { class: 'chart-box' }, canvases.indicators)),
      el('section', { class: 'card span-4' }, el('h2', {}, 'Detections over time'), el('div', { class: 'chart-box' }, canvases.timeline)),
      el('section', { class: 'card span-4' }, el('h2', {}, 'By country (GeoIP)'),
        el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Country'), el('th', { class: 'num' }, 'Detections'))), countries)))),
    el('section', { class: 'card' },
      el('div', { class: 'page-head' }, el('h2', {}, 'Suspicious activities'), filterForm),
      alertsStatus,
      el('div', { class: 'table-wrap' }, el('table', { id: 'alerts' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Transaction'), el('th', {}, 'User'), el('th', { class: 'num' }, 'Amount'),
          el('th', {}, 'Country'), el('th', {}, 'Score'), el('th', {}, 'Indicators'), el('th', {}, 'Review'))),
        alertsBody)),
      el('div', { class: 'pager' }, more)));

  const indicatorChart = ui.chart(canvases.indicators, {
    type: 'bar',
    data: { labels: [], datasets: [{ label: 'Detections', data: [], backgroundColor: ui.palette[3] }] },
    options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
  });
  const timelineChart = ui.chart(canvases.timeline, {
    type: 'bar',
    data: { labels: [], datasets: [{ label: 'Detections', data: [], backgroundColor: ui.palette[1] }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true }, x: { ticks: { maxTicksLimit: 8 } } } },
  });

  function saveParams() {
    ui.setParams({ ...range, min_score: minScore, indicator });
  }

  async function loadStats() {
    try {
      const answer = await ui.api('/api/fraud/stats', { query: range });
      if (!view.isConnected) return;
      status.replaceChildren();
      kpis.replaceChildren(
        ui.kpi('Scored', fmt.number(answer.scored)),
        ui.kpi('Flagged', fmt.number(answer.detected)),
        ui.kpi('Detection rate', fmt.percent(answer.detection_rate)),
        ui.kpi('Average flagged score', answer.average_detected_score === null ? '–' : answer.average_detected_score.toFixed(1)),
        ui.kpi('Confirmed', fmt.number(answer.reviews?.confirmed ?? 0)),
        ui.kpi('False positives', fmt.number(answer.reviews?.false_positive ?? 0)));
      indicatorChart.data.labels = answer.by_indicator.map((item) => item.value);
      indicatorChart.data.datasets[0].data = answer.by_indicator.map((item) => item.count);
      indicatorChart.update();
      timelineChart.data.labels = answer.timeline.map((point) => fmt.shortTime(point.time));
      timelineChart.data.datasets[0].data = answer.timeline.map((point) => point.count);
      timelineChart.update();
      countries.replaceChildren(...(answer.by_country.length === 0
        ? [el('tr', {}, el('td', { colspan: 2, class: 'empty' }, 'No GeoIP countries (is a GeoIP database loaded?).'))]
        : answer.by_country.map((item) => el('tr', {}, el('td', {}, item.value), el('td', { class: 'num' }, fmt.number(item.count))))));
      const known = new Set([...indicatorSelect.options].map((option) => option.value));
      for (const item of answer.by_indicator) {
        if (!known.has(item.value)) indicatorSelect.append(el('option', { value: item.value }, item.value));
      }
      indicatorSelect.value = indicator;
    } catch (error) {
      if (view.isConnected) status.replaceChildren(ui.errorBox(error));
    }
  }

  function reviewCell(hit) {
    const current = hit._review?.status || 'new';
    const badge = el('span', { class: `badge status-${current}`, 'data-status': current }, STATUSES.find(([value]) => value === current)?.[1] || current);
    const note = el('input', { name: 'note', placeholder: 'Note', 'aria-label': `Review note for ${hit._id}`, value: hit._review?.note || '' });
    const act = (status) => async () => {
      try {
        const answer = await ui.api(`/api/fraud/alerts/${encodeURIComponent(hit._id)}/review`, {
          method: 'PUT',
          body: note.value.trim() ? { status, note: note.value.trim() } : { status },
        });
        hit._review = answer.review;
        cell.replaceWith(reviewCell(hit));
        ui.toast(`${hit.transaction_id || hit._id}: ${STATUSES.find(([value]) => value === status)[1].toLowerCase()}.`);
        loadStats();
      } catch (error) {
        ui.toast(error.message, 'error');
      }
    };
    const by = hit._review?.reviewed_by ? el('div', { class: 'muted' }, `by ${hit._review.reviewed_by.username}`) : null;
    const cell = el('td', { class: 'review' }, badge, by,
      el('div', { class: 'toolbar' }, note,
        el('button', { type: 'button', class: 'danger', disabled: current === 'confirmed', onclick: act('confirmed') }, 'Confirm'),
        el('button', { type: 'button', disabled: current === 'false_positive', onclick: act('false_positive') }, 'False positive'),
        current !== 'new' ? el('button', { type: 'button', class: 'link', onclick: act('new') }, 'Reopen') : null));
    return cell;
  }

  function alertRow(hit) {
    const score = hit.fraud?.score ?? hit.fraud_score;
    const indicators = hit.fraud?.indicators ?? hit.indicators ?? [];
    return el('tr', { 'data-id': hit._id },
      el('td', { class: 'time' }, fmt.time(hit['@timestamp'])),
      el('td', {}, hit.transaction_id || '–'),
      el('td', {}, hit.user_id || '–'),
      el('td', { class: 'num' }, hit.amount !== undefined ? `${fmt.money(hit.amount)} ${hit.currency || ''}` : '–'),
      el('td', {}, hit.geo?.country_iso_code || hit.country || '–'),
      el('td', {}, el('span', { class: 'score' }, el('meter', { min: 0, max: 100, low: 50, high: 75, optimum: 0, value: score ?? 0 }), score ?? '–')),
      el('td', {}, indicators.map((name) => el('span', { class: 'badge' }, name))),
      reviewCell(hit));
  }

  async function loadAlerts(append) {
    const query = { ...range, size: 25, min_score: minScore, indicator };
    if (append && after) query.search_after = after;
    alertsStatus.textContent = 'Loading…';
    try {
      const answer = await ui.api('/api/fraud/suspicious-activities', { query });
      if (!view.isConnected) return;
      const rows = answer.hits.map(alertRow);
      if (append) alertsBody.append(...rows);
      else alertsBody.replaceChildren(...rows);
      after = answer.next_search_after;
      const shown = alertsBody.children.length;
      alertsStatus.textContent = answer.total === 0
        ? 'Nothing suspicious in this window.'
        : `${fmt.number(shown)} of ${fmt.number(answer.total)} suspicious events, newest first.`;
      more.hidden = !after || shown >= answer.total;
    } catch (error) {
      if (view.isConnected) alertsStatus.replaceChildren(ui.errorBox(error));
    }
  }

  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    minScore = scoreInput.value;
    indicator = indicatorSelect.value;
    saveParams();
    loadAlerts(false);
  });

  await Promise.all([loadStats(), loadAlerts(false)]);
}
