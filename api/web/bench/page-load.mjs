// How fast the web UI's pages are ready: from navigation until the page has drawn its first
// answers (the shell marks the view data-ready), in Chromium, against a running Sluice.
// Cold: a new browser profile each time (nothing cached); warm: a reload in the same profile
// (files revalidated with their ETag). Prints the median and p95 of each, and the bytes moved.
//
//   node bench/page-load.mjs --url http://127.0.0.1:8080 --user admin --rounds 20
//   (the password is read from UI_BENCH_PASSWORD)

import { chromium } from 'playwright-core';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => {
  if (arg.startsWith('--')) pairs.push([arg.slice(2), all[i + 1]]);
  return pairs;
}, []));
const url = args.url || 'http://127.0.0.1:8080';
const rounds = Number(args.rounds || 20);
const pages = (args.pages || 'dashboard,search,fraud,performance').split(',');
const password = process.env.UI_BENCH_PASSWORD;
if (!args.user || !password) {
  console.error('usage: UI_BENCH_PASSWORD=… node bench/page-load.mjs --url URL --user NAME [--rounds N] [--pages a,b]');
  process.exit(2);
}

const login = await fetch(`${url}/api/auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username: args.user, password }),
});
if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
const tokens = await login.json();
const session = JSON.stringify({ access_token: tokens.access_token, refresh_token: tokens.refresh_token, user: tokens.user });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  await context.addInitScript((value) => {
    if (!localStorage.getItem('sluice.session')) localStorage.setItem('sluice.session', value);
  }, session);
  return { context, page: await context.newPage() };
}

async function timed(page, load) {
  const started = performance.now();
  await load();
  await page.locator('.view[data-ready]').waitFor({ timeout: 30_000 });
  const ms = performance.now() - started;
  const bytes = await page.evaluate(() => performance.getEntriesByType('navigation')
    .concat(performance.getEntriesByType('resource'))
    .reduce((sum, entry) => sum + (entry.transferSize || 0), 0));
  return { ms, bytes };
}

const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
};

console.log(`page          cold median  cold p95  warm median  warm p95  cold KB  warm KB   (${rounds} rounds, ${url})`);
for (const name of pages) {
  const cold = [];
  const warm = [];
  for (let round = 0; round < rounds; round += 1) {
    const { context, page } = await newPage();
    cold.push(await timed(page, () => page.goto(`${url}/ui/#/${name}`)));
    warm.push(await timed(page, () => page.reload()));
    await context.close();
  }
  const row = [
    name.padEnd(12),
    `${quantile(cold.map((r) => r.ms), 0.5).toFixed(0)} ms`.padStart(12),
    `${quantile(cold.map((r) => r.ms), 0.95).toFixed(0)} ms`.padStart(9),
    `${quantile(warm.map((r) => r.ms), 0.5).toFixed(0)} ms`.padStart(12),
    `${quantile(warm.map((r) => r.ms), 0.95).toFixed(0)} ms`.padStart(9),
    `${(quantile(cold.map((r) => r.bytes), 0.5) / 1024).toFixed(0)}`.padStart(8),
    `${(quantile(warm.map((r) => r.bytes), 0.5) / 1024).toFixed(0)}`.padStart(8),
  ];
  console.log(row.join(' '));
}
await browser.close();
