// Dashboard (viewer+): KPI cards, logs over time, levels, top services, countries and products,
// and the latest errors, from one request to /api/dashboard/overview; refreshes on its own.

const LEVEL_COLOURS = { error: '#c0392b', critical: '#7b1f1a', fatal: '#7b1f1a', warning: '#e0a01f', warn: '#e0a01f', info: '#0f4c81', debug: '#95a5a6' };
const REFRESH_CHOICES = [[0, 'Off'], [10, '10 s'], [30, '30 s'], [60, '1 min'], [300, '5 min']];
const HOUR = 3_600_000;

/** Hourly points when the window is between a few hours and a week; else the server's choice. */
function intervalFor(range) {
  const spans = { '1h': HOUR, '24h': 24 * HOUR, '7d': 168 * HOUR, '30d': 720 * HOUR };
  const span = range.range ? spans[range.range] : new Date(range.to || Date.now()) - new Date(range.from || 0);
  return span >= 6 * HOUR && span <= 8 * 24 * HOUR ? '1h' : undefined;
}

function unitOf(intervalMs) {
  const units = [[86_400_000, 'day'], [HOUR, 'hour'], [60_000, 'minute']];
  for (const [ms, name] of units) {
    if (intervalMs === ms) return name;
    if (intervalMs > ms && intervalMs % ms === 0) return `${intervalMs / ms} ${name}s`;
  }
  return `${Math.round(intervalMs / 1000)} s`;
}

export default async function dashboard(view, ui) {
  const { el, fmt, kpi } = ui;
  let range = ui.rangeOf(ui.params);
  let refresh = Number(ui.params.refresh ?? 30);
  let stopTimer = null;

  const updated = el('span', { class: 'muted', 'aria-live': 'polite' });
  const refreshSelect = el('select', { 'aria-label': 'Refresh every', onchange: () => { refresh = Number(refreshSelect.value); schedule(); saveParams(); } },
    REFRESH_CHOICES.map(([seconds, label]) => el('option', { value: seconds, selected: seconds === refresh }, label)));
  const pickerSlot = el('div');
  const kpis = el('section', { class: 'kpis', 'aria-label': 'Key figures' });
  const status = el('div');
  const timelineTitle = el('h2', {}, 'Logs over time');
  const canvases = {
    timeline: el('canvas', { id: 'chart-timeline', role: 'img', 'aria-label': 'Events and errors over time' }),
    levels: el('canvas', { id: 'chart-levels', role: 'img', 'aria-label': 'Events by level' }),
    services: el('canvas', { id: 'chart-services', role: 'img', 'aria-label': 'Top services' }),
    countries: el('canvas', { id: 'chart-countries', role: 'img', 'aria-label': 'Top countries' }),
    products: el('canvas', { id: 'chart-products', role: 'img', 'aria-label': 'Top products by revenue' }),
  };
  const box = (canvas, tall) => el('div', { class: tall ? 'chart-box tall' : 'chart-box' }, canvas);
  const errorsBody = el('tbody');

  view.append(
    el('div', { class: 'page-head' },
      el('h1', {}, 'Dashboard'),
      el('div', { class: 'toolbar' }, pickerSlot, el('label', {}, 'Refresh ', refreshSelect), updated)),
    status,
    kpis,
    el('div', { class: 'grid' },
      el('section', { class: 'card span-8' }, timelineTitle, box(canvases.timeline, true)),
      el('section', { class: 'card span-4' }, el('h2', {}, 'Levels'), box(canvases.levels, true)),
      el('section', { class: 'card span-4' }, el('h2', {}, 'Top services'), box(canvases.services)),
      el('section', { class: 'card span-4' }, el('h2', {}, 'Top countries'), box(canvases.countries)),
      el('section', { class: 'card span-4' }, el('h2', {}, 'Top products (revenue)'), box(canvases.products)),
      el('section', { class: 'card span-12' }, el('h2', {}, 'Recent errors'),
        el('div', { class: 'table-wrap' }, el('table', { id: 'recent-errors' },
          el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Service'), el('th', {}, 'Code'), el('th', {}, 'Message'))),
          errorsBody)))));

  const bar = (canvas, label, colour, horizontal = true) => ui.chart(canvas, {
    type: 'bar',
    data: { labels: [], datasets: [{ label, data: [], backgroundColor: colour }] },
    options: { indexAxis: horizontal ? 'y' : 'x', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
  });
  const charts = {
    timeline: ui.chart(canvases.timeline, {
      type: 'line',
      data: { labels: [], datasets: [
        { label: 'Events', data: [], borderColor: ui.palette[0], backgroundColor: 'rgba(15,76,129,.12)', fill: true, tension: 0.25, pointRadius: 0 },
        { label: 'Errors', data: [], borderColor: ui.palette[3], backgroundColor: 'rgba(192,57,43,.1)', fill: true, tension: 0.25, pointRadius: 0 },
      ] },
      options: { interaction: { mode: 'index', intersect: false }, scales: { y: { beginAtZero: true }, x: { ticks: { maxTicksLimit: 12 } } } },
    }),
    levels: ui.chart(canvases.levels, {
      type: 'doughnut',
      data: { labels: [], datasets: [{ data: [], backgroundColor: [] }] },
      options: { plugins: { legend: { position: 'bottom' } } },
    }),
    services: bar(canvases.services, 'Events', ui.palette[0]),
    countries: bar(canvases.countries, 'Events', ui.palette[2]),
    products: bar(canvases.products, 'Revenue', ui.palette[1]),
  };

  function setBars(chart, items, value = (item) => item.count, emptyText = 'Nothing in this window.') {
    chart.data.labels = items.map((item) => item.value);
    chart.data.datasets[0].data = items.map(value);
    chart.update();
    const box = chart.canvas.parentElement;
    box.querySelector('.empty')?.remove();
    if (items.length === 0) box.append(el('p', { class: 'empty' }, emptyText));
  }

  function show(answer) {
    const stats = answer.stats;
    kpis.replaceChildren(
      kpi('Events', fmt.number(stats.events)),
      kpi('Revenue', fmt.money(stats.revenue), `${fmt.number(stats.transactions)} transactions`),
      kpi('Average basket', fmt.money(stats.average_basket)),
      kpi('Error rate', fmt.percent(stats.error_rate), `${fmt.number(stats.errors)} errors`),
      kpi('Fraud alerts', fmt.number(stats.fraud_alerts)),
      kpi('p95 latency', fmt.ms(stats.p95_response_time_ms)),
      kpi('Active users', fmt.number(stats.active_users), 'estimated'),
    );
    timelineTitle.textContent = `Logs per ${unitOf(answer.window.interval_ms)}`;
    const timeline = charts.timeline;
    timeline.data.labels = answer.timeline.map((point) => fmt.shortTime(point.time));
    timeline.data.datasets[0].data = answer.timeline.map((point) => point.count);
    timeline.data.datasets[1].data = answer.timeline.map((point) => point.errors);
    timeline.update();
    const levels = answer.charts.levels;
    charts.levels.data.labels = levels.map((item) => item.value);
    charts.levels.data.datasets[0].data = levels.map((item) => item.count);
    charts.levels.data.datasets[0].backgroundColor = levels.map((item, i) => LEVEL_COLOURS[item.value] || ui.palette[(i + 4) % ui.palette.length]);
    charts.levels.update();
    setBars(charts.services, answer.charts.top_services);
    setBars(charts.countries, answer.charts.top_countries, (item) => item.count,
      'No countries: the events carry no GeoIP country (is a GeoIP database loaded?).');
    setBars(charts.products, answer.charts.top_products, (item) => item.revenue);
    const searchable = ui.pages.includes('search');
    errorsBody.replaceChildren(...(answer.recent_errors.length === 0
      ? [el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'No errors in this window.'))]
      : answer.recent_errors.map((event) => el('tr', {},
        el('td', { class: 'time' }, fmt.time(event['@timestamp'] || event.timestamp)),
        el('td', {}, event.service || '–'),
        el('td', {}, event.error_code && searchable
          ? el('a', { href: `#/search?query=${encodeURIComponent(`error_code:${event.error_code}`)}&range=24h` }, event.error_code)
          : event.error_code || '–'),
        el('td', { class: 'message' }, event.error_message || event.message || '')))));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  async function load() {
    try {
      const answer = await ui.api('/api/dashboard/overview', { query: { ...range, interval: intervalFor(range) } });
      if (!view.isConnected) return;
      status.replaceChildren();
      show(answer);
      view.dataset.loaded = String(Number(view.dataset.loaded || 0) + 1);
    } catch (error) {
      if (view.isConnected) status.replaceChildren(ui.errorBox(error));
    }
  }

  function saveParams() {
    ui.setParams({ ...range, refresh });
  }

  function schedule() {
    if (stopTimer) stopTimer();
    stopTimer = refresh > 0 ? ui.every(refresh * 1000, load) : null;
  }

  pickerSlot.append(ui.rangePicker(range, (next) => {
    range = next; // without allowAll, always a quick range or from and to
    saveParams();
    load();
  }));
  schedule();
  await load();
}
