// Copies the browser libraries Sluice serves from node_modules (installed by `npm ci` from
// package-lock.json) into static/vendor/, where the binary builds them in. With --check it
// changes nothing and fails when a vendored file differs from what the lockfile installs, so
// the served libraries are always the locked ones.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const FILES = [
  ['chart.js/dist/chart.umd.min.js', 'chart.umd.min.js'],
  ['chart.js/LICENSE.md', 'chart.js.LICENSE.md'],
  ['flatpickr/dist/flatpickr.min.js', 'flatpickr.min.js'],
  ['flatpickr/dist/flatpickr.min.css', 'flatpickr.min.css'],
  ['flatpickr/LICENSE.md', 'flatpickr.LICENSE.md'],
  ['swagger-ui-dist/swagger-ui-bundle.js', 'swagger-ui-bundle.js'],
  ['swagger-ui-dist/swagger-ui.css', 'swagger-ui.css'],
  ['swagger-ui-dist/LICENSE', 'swagger-ui.LICENSE'],
  ['swagger-ui-dist/NOTICE', 'swagger-ui.NOTICE'],
];

const check = process.argv.includes('--check');
const vendor = join(here, 'static', 'vendor');
mkdirSync(vendor, { recursive: true });
let stale = 0;
for (const [from, to] of FILES) {
  const source = join(here, 'node_modules', from);
  const target = join(vendor, to);
  if (!existsSync(source)) {
    console.error(`${source} is missing: run npm ci in ${here}`);
    process.exit(1);
  }
  if (check) {
    if (!existsSync(target) || !readFileSync(source).equals(readFileSync(target))) {
      console.error(`static/vendor/${to} differs from node_modules/${from}: run npm run vendor`);
      stale += 1;
    }
  } else {
    copyFileSync(source, target);
    console.log(`static/vendor/${to} <- node_modules/${from}`);
  }
}
process.exit(stale === 0 ? 0 : 1);
