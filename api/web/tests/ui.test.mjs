// The web UI in Chromium, against a running `sluice serve` that tests/web_ui.rs starts with
// users, a GeoIP database and events from `sluice gen`. Everything goes through the pages as a
// person would use them; the API is asked only to check what the pages show.
//
// Environment (set by tests/web_ui.rs): SLUICE_URL, SLUICE_USERS (JSON: role -> {username,
// password}), SLUICE_SCREENSHOTS (folder), CHROMIUM_PATH, SLUICE_KIBANA_DASHBOARD,
// SLUICE_GENERATED_EVENTS, SLUICE_ACCESS_TTL_SECS.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = required('SLUICE_URL');
const USERS = JSON.parse(required('SLUICE_USERS'));
const SHOTS = required('SLUICE_SCREENSHOTS');
const KIBANA = required('SLUICE_KIBANA_DASHBOARD');
const GENERATED = Number(required('SLUICE_GENERATED_EVENTS'));
const ACCESS_TTL_MS = Number(required('SLUICE_ACCESS_TTL_SECS')) * 1000;
const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };
const ANALYST_PAGES = ['search', 'upload', 'fraud', 'performance', 'kibana'];

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/web_ui.rs (cargo test --test web_ui)`);
  return value;
}

let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * A fresh browser profile (its own localStorage) and a page in it. Fails the test on any
 * script error, security-policy violation or console error, except failed requests whose
 * status the test expects.
 */
async function open(t, { viewport = DESKTOP, expectedStatuses = [] } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // Everything comes from Sluice: no CDN, nothing else on the network (the Kibana frame aside).
  page.on('request', (request) => {
    const url = request.url();
    const kibana = url === KIBANA.split('#')[0];
    if (!url.startsWith(BASE) && !url.startsWith('blob:') && !url.startsWith('data:') && !kibana) {
      problems.push(`request outside Sluice: ${url}`);
    }
  });
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (expectedStatuses.some((status) => text.includes(`status of ${status}`))) return;
    problems.push(`console: ${text}`);
  });
  t.after(async () => {
    await context.close();
    assert.deepEqual(problems, [], 'the page logged errors');
  });
  return { page, context };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function logIn(page, who, { start = '#/login' } = {}) {
  await page.goto(`${BASE}/ui/${start}`);
  await page.getByLabel('Username').fill(USERS[who].username);
  await page.getByLabel('Password').fill(USERS[who].password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#nav a').first().waitFor({ state: 'attached' });
}

/** Follows a link of the menu. */
async function visit(page, title) {
  await page.locator('#nav').getByRole('link', { name: title, exact: true }).click();
}

/** The API, called from the page with its own session (so no extra logins). */
async function apiFromPage(page, path, init = {}) {
  return page.evaluate(async ({ path, init }) => {
    const session = JSON.parse(localStorage.getItem('sluice.session'));
    const response = await fetch(path, {
      ...init,
      headers: { ...(init.headers || {}), authorization: `Bearer ${session.access_token}` },
    });
    const text = await response.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: response.status, body };
  }, { path, init });
}

async function menuLinks(page) {
  return page.locator('#nav a').allTextContents();
}

/** Records in CSV text, counting line breaks inside quoted cells as part of their record. */
function csvRecords(text) {
  let records = 0;
  let quoted = false;
  let empty = true;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    if (char === '\n' && !quoted) {
      if (!empty) records += 1;
      empty = true;
    } else if (char !== '\r') empty = false;
  }
  return empty ? records : records + 1;
}

test('the login and registration forms', async (t) => {
  const { page } = await open(t, { expectedStatuses: [401] });
  await page.goto(`${BASE}/ui/`);
  // Not logged in: the login form, and no menu.
  await page.getByRole('heading', { name: 'Log in to Sluice' }).waitFor();
  assert.deepEqual(await menuLinks(page), []);
  await shot(page, 'login');

  await page.getByLabel('Username').fill(USERS.analyst.username);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('form .error').filter({ hasText: 'wrong username or password' }).waitFor();

  await page.getByLabel('Password').fill(USERS.analyst.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  assert.match(page.url(), /#\/dashboard/);
  assert.deepEqual(await menuLinks(page), ['Dashboard', 'Search', 'Upload', 'Fraud', 'Performance', 'Kibana']);

  // A new account, made in the form the login page offers (serve on 127.0.0.1 takes them), is
  // a viewer.
  const { page: newcomer } = await open(t, { expectedStatuses: [400] });
  await newcomer.goto(`${BASE}/ui/`);
  await newcomer.getByRole('link', { name: 'Register' }).click();
  await newcomer.getByRole('heading', { name: 'Create an account' }).waitFor();
  await newcomer.getByLabel('Username').fill('nina');
  await newcomer.getByLabel('Display name').fill('Nina N.');
  await newcomer.getByLabel('Password').fill('short');
  await shot(newcomer, 'register');
  await newcomer.getByRole('button', { name: 'Create account' }).click();
  await newcomer.locator('form .error').filter({ hasText: 'password' }).waitFor();
  await newcomer.getByLabel('Password').fill('A-Long-Enough-Passw0rd');
  await newcomer.getByRole('button', { name: 'Create account' }).click();
  await newcomer.getByRole('heading', { name: 'Dashboard' }).waitFor();
  assert.deepEqual(await menuLinks(newcomer), ['Dashboard']);
  await newcomer.locator('#who').getByText('viewer').waitFor();
});

test('the dashboard draws its charts from the generated events', async (t) => {
  const { page } = await open(t);
  await logIn(page, 'analyst');
  await page.locator('.view[data-loaded]').waitFor();
  const { body: stats } = await apiFromPage(page, '/api/dashboard/stats?range=24h');
  assert.ok(stats.stats.events > GENERATED / 2, `most generated events are in the last day: ${stats.stats.events}`);
  const kpi = async (label) => (await page.locator(`[data-kpi="${label}"] .value`).textContent()).trim();
  assert.equal(await kpi('Events'), stats.stats.events.toLocaleString('en-US'));
  assert.equal(await kpi('Fraud alerts'), stats.stats.fraud_alerts.toLocaleString('en-US'));

  // Each chart holds the numbers and has drawn them.
  const charts = await page.evaluate(() => Object.fromEntries(
    ['chart-timeline', 'chart-levels', 'chart-services', 'chart-countries', 'chart-products'].map((id) => {
      const chart = window.Chart.getChart(id);
      const canvas = document.getElementById(id);
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
      return [id, {
        labels: chart.data.labels.length,
        total: chart.data.datasets[0].data.reduce((sum, value) => sum + value, 0),
        painted,
      }];
    })));
  for (const [id, chart] of Object.entries(charts)) {
    assert.ok(chart.labels > 0, `${id} has points: ${JSON.stringify(chart)}`);
    assert.ok(chart.painted > 2000, `${id} is drawn: ${JSON.stringify(chart)}`);
  }
  assert.equal(charts['chart-timeline'].total, stats.stats.events, 'the timeline counts every event of the window');
  assert.equal(charts['chart-levels'].total, stats.stats.events, 'the levels count every event of the window');
  assert.equal(await page.locator('#recent-errors tbody tr').count() > 0, true);
  await shot(page, 'dashboard');

  // Another window: the address and the figures follow.
  const loads = Number(await page.locator('.view').getAttribute('data-loaded'));
  await page.getByRole('button', { name: '7d' }).click();
  await page.locator(`.view[data-loaded="${loads + 1}"]`).waitFor();
  assert.match(page.url(), /range=7d/);
  assert.equal(await kpi('Events'), GENERATED.toLocaleString('en-US'));
  // And it refreshes on its own.
  await page.getByLabel('Refresh every').selectOption('10');
  await page.locator(`.view[data-loaded="${loads + 2}"]`).waitFor({ timeout: 15_000 });
});

test('an uploaded CSV is reported record by record and found in search, highlighted', async (t) => {
  const { page } = await open(t);
  await logIn(page, 'analyst');
  await visit(page, 'Upload');
  await page.getByRole('heading', { name: 'Upload logs' }).waitFor();
  const marker = `quokka${Date.now() % 100000}`;
  const rows = [
    'log_type,service,level,error_code,error_message,message',
    ...[1, 2, 3, 4, 5].map((n) => `error,checkout,error,E${n},"Card ${marker} declined, try ${n}",checkout failed for order ${n}`),
    'refund,checkout,error,E6,not a log type,a record of a log type that does not exist',
  ];
  // The drop zone opens the file chooser from the keyboard.
  const chooser = page.waitForEvent('filechooser');
  await page.locator('.dropzone').focus();
  await page.keyboard.press('Enter');
  await (await chooser).setFiles({ name: 'declines.csv', mimeType: 'text/csv', buffer: Buffer.from(rows.join('\r\n')) });
  const report = page.locator('#upload-report');
  await report.locator('[data-accepted="5"]').waitFor();
  await report.locator('[data-rejected="1"]').waitFor();
  assert.equal(await page.locator('progress').evaluate((bar) => bar.value), 100);
  const refused = await page.locator('#upload-errors tbody tr td').allTextContents();
  assert.equal(refused[0], '6', `the refused record's number: ${refused}`);
  assert.equal(refused[1], 'log_type', `the refused field: ${refused}`);
  await shot(page, 'upload');

  // A file dropped on the zone goes the same way.
  const transfer = await page.evaluateHandle((text) => {
    const data = new DataTransfer();
    data.items.add(new File([text], 'dropped.ndjson', { type: 'application/x-ndjson' }));
    return data;
  }, [1, 2].map((n) => JSON.stringify({ log_type: 'error', service: 'cart', level: 'error', error_message: `Dropped ${marker} ${n}` })).join('\n'));
  await page.locator('.dropzone').dispatchEvent('drop', { dataTransfer: transfer });
  await report.getByText('dropped.ndjson').waitFor();
  await report.locator('[data-accepted="2"]').waitFor();
  await report.locator('[data-rejected="0"]').waitFor();

  await visit(page, 'Search');
  const query = page.getByLabel('Search query');
  await query.waitFor();
  // Processing takes a moment; search again until all seven are there.
  const deadline = Date.now() + 20_000;
  for (;;) {
    await query.fill(marker);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('.results-status').filter({ hasText: /events|No events/ }).waitFor();
    if ((await page.locator('#total').textContent().catch(() => '0')) === '7') break;
    assert.ok(Date.now() < deadline, 'the uploaded records did not become searchable within 20 s');
    await page.waitForTimeout(300);
  }
  const marks = await page.locator('#results mark').allTextContents();
  assert.equal(marks.length, 7, `one mark per hit: ${marks}`);
  for (const mark of marks) assert.equal(mark.toLowerCase(), marker);
  assert.match(page.url(), new RegExp(`query=${marker}`));
  // Every field is a click away.
  await page.locator('#results tr.hit button').first().click();
  assert.match(await page.locator('#results tr.detail:not([hidden]) pre').textContent(), /"ingest": \{/);
  await shot(page, 'search');
});

test('export downloads every hit of the search as CSV and as NDJSON', async (t) => {
  const { page } = await open(t);
  await logIn(page, 'analyst');
  await page.goto(`${BASE}/ui/#/search?log_type=transaction&range=all`);
  await page.locator('#total').waitFor();
  const total = Number((await page.locator('#total').textContent()).replace(/\D/g, ''));
  assert.ok(total > 500, `transactions among the generated events: ${total}`);

  for (const [format, expected] of [['csv', total + 1], ['ndjson', total]]) {
    await page.getByLabel('Export format').selectOption(format);
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export' }).click();
    const file = await (await download).path();
    const text = readFileSync(file, 'utf8');
    const records = format === 'csv' ? csvRecords(text) : text.split('\n').filter((line) => line.trim()).length;
    assert.equal(records, expected, `${format}: ${total} hits${format === 'csv' ? ' and a header' : ''}`);
    if (format === 'ndjson') {
      for (const line of text.trim().split('\n')) assert.equal(JSON.parse(line).log_type, 'transaction');
    }
  }

  // A search saved here comes back from the saved list.
  await page.getByLabel('Name of the saved search').fill('All transactions');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.locator('#saved-searches').getByRole('button', { name: 'All transactions', exact: true }).waitFor();
  await page.locator('#recent-searches li button').first().waitFor();
});

test('a viewer neither sees nor reaches the analyst pages', async (t) => {
  const { page } = await open(t, { expectedStatuses: [401, 403] });
  await logIn(page, 'viewer');
  assert.deepEqual(await menuLinks(page), ['Dashboard']);
  for (const name of [...ANALYST_PAGES, 'users', 'dead-letters']) {
    await page.goto(`${BASE}/ui/#/${name}`);
    await page.locator('.notice').filter({ hasText: 'does not open this page' }).waitFor();
    assert.equal(await page.locator('form[role=search], .dropzone, #alerts, #users').count(), 0, name);
    if (name === 'search') await shot(page, 'viewer-denied');
  }
  // Nor does the server hand the page over when asked directly.
  for (const name of ANALYST_PAGES) {
    const { status, body } = await apiFromPage(page, `/ui/pages/${name}.js`);
    assert.equal(status, 403, `${name}: ${JSON.stringify(body)}`);
    assert.equal(body.error.code, 'insufficient_role');
  }
  assert.equal((await apiFromPage(page, '/ui/pages/dashboard.js')).status, 200);
  // The profile offers what the role opens, and only that.
  await page.locator('#who a').click();
  await page.locator('#quick-links').waitFor();
  assert.deepEqual(await page.locator('#quick-links a').allTextContents(), ['Dashboard']);

  // Logging out ends the session on the server too, not only in this browser.
  const { access_token: spent } = await page.evaluate(() => JSON.parse(localStorage.getItem('sluice.session')));
  await page.locator('#who').getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to Sluice' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('sluice.session')), null);
  const refused = await page.evaluate(async (token) => {
    const response = await fetch('/api/auth/me', { headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, body: await response.json() };
  }, spent);
  assert.equal(refused.status, 401, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, 'session_ended');
});

test('the session refreshes silently, and an expired session sends you to log in', async (t) => {
  const { page } = await open(t, { expectedStatuses: [401] });
  await logIn(page, 'analyst');
  const first = await page.evaluate(() => JSON.parse(localStorage.getItem('sluice.session')));
  // Past the access token's life and the server's clock leeway: it is refused now.
  await page.waitForTimeout(ACCESS_TTL_MS + 6_000);
  await visit(page, 'Performance');
  await page.locator('#endpoints tbody tr').first().waitFor();
  const second = await page.evaluate(() => JSON.parse(localStorage.getItem('sluice.session')));
  assert.notEqual(second.access_token, first.access_token, 'a new access token');
  assert.notEqual(second.refresh_token, first.refresh_token, 'the refresh token rotated');
  assert.match(page.url(), /#\/performance/);
  await shot(page, 'performance');

  // A browser left with the expired access token and the refresh token already spent: its
  // session is over, so it goes to the login form, and comes back after logging in.
  const { page: stale } = await open(t, { expectedStatuses: [401] });
  await stale.goto(`${BASE}/ui/`);
  await stale.evaluate((session) => localStorage.setItem('sluice.session', JSON.stringify(session)), first);
  await stale.goto(`${BASE}/ui/#/fraud`);
  await stale.getByRole('heading', { name: 'Log in to Sluice' }).waitFor();
  await stale.locator('.notice').filter({ hasText: /refresh token|session/i }).waitFor();
  assert.match(stale.url(), /next=fraud/);
  assert.equal(await stale.evaluate(() => localStorage.getItem('sluice.session')), null);
  await shot(stale, 'session-ended');
  await stale.getByLabel('Username').fill(USERS.analyst.username);
  await stale.getByLabel('Password').fill(USERS.analyst.password);
  await stale.getByRole('button', { name: 'Log in' }).click();
  await stale.getByRole('heading', { name: 'Fraud' }).waitFor();

  // The spent token's reuse revoked the first browser's session too: its next step asks it to
  // log in again.
  await visit(page, 'Search');
  await page.getByRole('heading', { name: 'Log in to Sluice' }).waitFor();
});

test('fraud reviews, users, dead letters and Kibana for the roles that have them', async (t) => {
  const { page } = await open(t);
  await logIn(page, 'admin');
  assert.deepEqual(await menuLinks(page),
    ['Dashboard', 'Search', 'Upload', 'Fraud', 'Performance', 'Kibana', 'Users', 'Dead letters']);

  await visit(page, 'Fraud');
  const row = page.locator('#alerts tbody tr').first();
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  await row.getByLabel(/Review note/).fill('card reported stolen');
  await row.getByRole('button', { name: 'Confirm' }).click();
  await page.locator(`#alerts tr[data-id="${id}"] [data-status="confirmed"]`).waitFor();
  const { body: alerts } = await apiFromPage(page, '/api/fraud/suspicious-activities?range=30d&size=200');
  const reviewed = alerts.hits.find((hit) => hit._id === id);
  assert.equal(reviewed._review.status, 'confirmed');
  assert.equal(reviewed._review.note, 'card reported stolen');
  const charts = await page.evaluate(() => window.Chart.getChart('chart-indicators').data.labels.length);
  assert.ok(charts > 0, 'detections by indicator are drawn');
  await shot(page, 'fraud');

  await visit(page, 'Users');
  const promoted = USERS.promoted.username;
  await page.locator(`#users tr[data-username="${promoted}"]`).waitFor();
  await page.getByLabel(`Role of ${promoted}`).selectOption('analyst');
  await page.locator('#toast').filter({ hasText: `${promoted} is now analyst` }).waitFor();
  const { body: listed } = await apiFromPage(page, `/api/users?username=${promoted}`);
  assert.equal(listed.users[0].role, 'analyst');
  await shot(page, 'users');
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Delete nina' }).click();
  await page.locator('#toast').filter({ hasText: 'nina deleted' }).waitFor();
  // The list is read again after the deletion.
  await page.locator('#users tr[data-username="nina"]').waitFor({ state: 'detached' });
  assert.equal((await apiFromPage(page, '/api/users?username=nina')).body.total, 0);

  await visit(page, 'Dead letters');
  await page.locator('#dead-letters tbody tr').first().waitFor();
  const letters = await page.locator('#dead-letters tbody tr').allTextContents();
  assert.equal(letters.length, 2, `the two refused queue records: ${letters}`);
  assert.match(letters.join('\n'), /malformed_json/);
  assert.match(letters.join('\n'), /amount.*at least 0/);
  await shot(page, 'dead-letters');
  // Filtered to the malformed one and purged, counted first.
  await page.getByLabel('Reason code').fill('malformed_json');
  await page.getByLabel('Reason code').press('Tab');
  await page.locator('#dead-letters tbody tr').nth(1).waitFor({ state: 'detached' });
  let asked = '';
  page.once('dialog', (dialog) => { asked = dialog.message(); dialog.accept(); });
  await page.getByRole('button', { name: 'Purge…' }).click();
  await page.locator('#toast').filter({ hasText: '1 dead letter purged' }).waitFor();
  assert.match(asked, /^Purge 1 dead letter\?/);
  await page.getByLabel('Reason code').fill('');
  await page.getByLabel('Reason code').press('Tab');
  await page.locator('#dead-letters tbody tr').first().filter({ hasText: 'invalid_value' }).waitFor();
  assert.equal(await page.locator('#dead-letters tbody tr').count(), 1, 'the purged letter left the list');
  // The other one replayed: its record goes through validation again.
  page.once('dialog', (dialog) => { asked = dialog.message(); dialog.accept(); });
  await page.getByRole('button', { name: 'Replay…' }).click();
  await page.locator('#toast').filter({ hasText: '1 dead letter replayed' }).waitFor();
  assert.match(asked, /^Replay 1 dead letter\?/);
  const { body: history } = await apiFromPage(page, '/api/dead-letters/actions');
  assert.deepEqual(history.actions.map((action) => [action.action, action.count, action.by]),
    [['replay', 1, 'admin'], ['purge', 1, 'admin']]);

  await visit(page, 'Kibana');
  const frame = page.locator('#kibana-frame');
  await frame.waitFor();
  assert.equal(await frame.getAttribute('src'), KIBANA);
  await shot(page, 'kibana');

  await page.locator('#who a').click();
  await page.locator('#my-role').filter({ hasText: 'admin' }).waitFor();
  await shot(page, 'profile');

  // A moderator manages users but has no dead letters.
  const { page: moderator } = await open(t, { expectedStatuses: [403] });
  await logIn(moderator, 'moderator');
  assert.ok((await menuLinks(moderator)).includes('Users'));
  assert.ok(!(await menuLinks(moderator)).includes('Dead letters'));
});

test('on a phone the menu folds away and works from the keyboard', async (t) => {
  const { page } = await open(t, { viewport: PHONE });
  await logIn(page, 'analyst');
  await page.locator('.view[data-loaded]').waitFor();
  assert.equal(await page.locator('#nav').isVisible(), false);
  await shot(page, 'phone-dashboard');
  const toggle = page.getByRole('button', { name: 'Menu' });
  await toggle.focus();
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await page.locator('#nav').getByRole('link', { name: 'Search' }).waitFor();
  await shot(page, 'phone-menu');
  await page.locator('#nav').getByRole('link', { name: 'Search' }).focus();
  await page.keyboard.press('Enter');
  await page.getByLabel('Search query').waitFor();
  assert.equal(await page.locator('#nav').isVisible(), false, 'the menu folds after choosing');
});

test('the API reference at /api/docs shows every operation, from Sluice alone, and runs one', async (t) => {
  const { page } = await open(t);
  const document = await (await fetch(`${BASE}/api/openapi.json`)).json();
  const operations = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  await page.goto(`${BASE}/api/docs`);
  await page.locator('.opblock').first().waitFor();
  assert.equal(await page.locator('.opblock').count(), operations);
  const health = page.locator('#operations-operations-get_health');
  await health.locator('.opblock-summary').click();
  await health.getByRole('button', { name: 'Try it out' }).click();
  await health.getByRole('button', { name: 'Execute' }).click();
  const status = health.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor();
  assert.match(await status.innerText(), /200/);
  await shot(page, 'api-docs');
});
