// Performance (analyst+): response-time and database percentiles, latency over time, each
// endpoint's percentiles (slowest first) with its requests over a threshold, the slowest
// requests themselves, and database latency per service.

export default async function performancePage(view, ui) {
  const { el, fmt, kpi } = ui;
  let range = ui.rangeOf(ui.params);
  let threshold = Number(ui.params.threshold_ms) || 1000;

  const status = el('div');
  const kpis = el('section', { class: 'kpis', 'aria-label': 'Percentiles' });
  const canvas = el('canvas', { id: 'chart-latency', role: 'img', 'aria-label': 'Response time over time' });
  const endpointsBody = el('tbody');
  const slowestBody = el('tbody');
  const servicesBody = el('tbody');
  const slowSummary = el('p', { class: 'muted' });
  const thresholdInput = el('input', { type: 'number', min: 0, step: 50, value: threshold, name: 'threshold_ms', 'aria-label': 'Slow request threshold in milliseconds' });
  const thresholdForm = el('form', { class: 'toolbar' }, el('label', {}, 'Slow above ', thresholdInput, ' ms'), el('button', { type: 'submit' }, 'Apply'));
  const table = (id, headings, body) => el('div', { class: 'table-wrap' }, el('table', { id },
    el('thead', {}, el('tr', {}, headings.map(([text, numeric]) => el('th', { class: numeric ? 'num' : undefined }, text)))), body));

  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Performance'),
      ui.rangePicker(range, (next) => {
        range = next; // without allowAll, always a quick range or from and to
        save();
        load();
      })),
    status,
    kpis,
    el('div', { class: 'grid' },
      el('section', { class: 'card span-12' }, el('h2', {}, 'Response time'), el('div', { class: 'chart-box' }, canvas)),
      el('section', { class: 'card span-12' },
        el('div', { class: 'page-head' }, el('h2', {}, 'Endpoints, slowest first'), thresholdForm), slowSummary,
        table('endpoints', [['Endpoint'], ['Requests', true], ['p50', true], ['p90', true], ['p95', true], ['p99', true], ['Slow', true]], endpointsBody)),
      el('section', { class: 'card span-6' }, el('h2', {}, 'Slowest requests'),
        table('slowest', [['Time'], ['Endpoint'], ['Response', true], ['Database', true], ['Status', true]], slowestBody)),
      el('section', { class: 'card span-6' }, el('h2', {}, 'Database latency by service'),
        table('db-services', [['Service'], ['Queries', true], ['p50', true], ['p95', true], ['p99', true]], servicesBody))));

  const chart = ui.chart(canvas, {
    type: 'line',
    data: { labels: [], datasets: [
      { label: 'Average', data: [], borderColor: ui.palette[0], pointRadius: 0, tension: 0.25 },
      { label: 'p95', data: [], borderColor: ui.palette[1], pointRadius: 0, tension: 0.25 },
    ] },
    options: { interaction: { mode: 'index', intersect: false }, scales: { y: { beginAtZero: true, title: { display: true, text: 'ms' } }, x: { ticks: { maxTicksLimit: 12 } } } },
  });

  function save() {
    ui.setParams({ ...range, threshold_ms: threshold === 1000 ? undefined : threshold });
  }

  const empty = (body, columns, text) => body.replaceChildren(el('tr', {}, el('td', { colspan: columns, class: 'empty' }, text)));

  async function load() {
    try {
      const [metrics, endpoints, database] = await Promise.all([
        ui.api('/api/performance/metrics', { query: range }),
        ui.api('/api/performance/api-response-times', { query: { ...range, threshold_ms: threshold } }),
        ui.api('/api/performance/database-latency', { query: range }),
      ]);
      if (!view.isConnected) return;
      status.replaceChildren();
      const rt = metrics.response_time_ms;
      const db = metrics.db_query_time_ms;
      kpis.replaceChildren(
        kpi('Requests', fmt.number(metrics.requests)),
        kpi('Response p50', fmt.ms(rt.p50)),
        kpi('Response p90', fmt.ms(rt.p90)),
        kpi('Response p95', fmt.ms(rt.p95)),
        kpi('Response p99', fmt.ms(rt.p99)),
        kpi('Database p95', fmt.ms(db.p95)),
        kpi('Server errors', fmt.percent(metrics.server_error_rate)));
      chart.data.labels = metrics.timeline.map((point) => fmt.shortTime(point.time));
      chart.data.datasets[0].data = metrics.timeline.map((point) => point.avg_ms);
      chart.data.datasets[1].data = metrics.timeline.map((point) => point.p95_ms);
      chart.update();
      slowSummary.textContent = `${fmt.number(endpoints.slow_requests)} requests took longer than ${fmt.number(endpoints.threshold_ms)} ms.`;
      if (endpoints.endpoints.length === 0) empty(endpointsBody, 7, 'No requests in this window.');
      else endpointsBody.replaceChildren(...endpoints.endpoints.map((item) => el('tr', {},
        el('td', {}, item.endpoint),
        el('td', { class: 'num' }, fmt.number(item.requests)),
        ...['p50', 'p90', 'p95', 'p99'].map((p) => el('td', { class: 'num' }, fmt.ms(item.response_time_ms[p]))),
        el('td', { class: 'num' }, fmt.number(item.slow_requests)))));
      if (endpoints.slowest.length === 0) empty(slowestBody, 5, 'No requests in this window.');
      else slowestBody.replaceChildren(...endpoints.slowest.map((request) => el('tr', {},
        el('td', { class: 'time' }, fmt.time(request['@timestamp'])),
        el('td', {}, request.endpoint || '–'),
        el('td', { class: 'num' }, fmt.ms(request.response_time)),
        el('td', { class: 'num' }, fmt.ms(request.db_query_time)),
        el('td', { class: 'num' }, request.status_code ?? '–'))));
      if (database.by_service.length === 0) empty(servicesBody, 5, 'No database timings in this window.');
      else servicesBody.replaceChildren(...database.by_service.map((item) => el('tr', {},
        el('td', {}, item.service),
        el('td', { class: 'num' }, fmt.number(item.requests)),
        ...['p50', 'p95', 'p99'].map((p) => el('td', { class: 'num' }, fmt.ms(item.db_query_time_ms[p]))))));
    } catch (error) {
      if (view.isConnected) status.replaceChildren(ui.errorBox(error));
    }
  }

  thresholdForm.addEventListener('submit', (event) => {
    event.preventDefault();
    threshold = Math.max(0, Number(thresholdInput.value) || 0);
    save();
    load();
  });

  await load();
}
