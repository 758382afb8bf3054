// The shell of Sluice's web UI: the session (tokens in localStorage, refreshed silently), the
// router, the menu, the public login and registration forms, and the helpers every page uses.
//
// Pages are scripts of their own, fetched with the user's token from /ui/pages/<name>.js: the
// server serves a page only to the roles that may use it, and /api/ui lists those pages, so the
// menu never links to a page the user cannot open.

const SESSION_KEY = 'sluice.session';
const DEFAULT_PAGE = 'dashboard';

// What the menu and the profile say of each page; who may open it is the server's to say.
const PAGE_INFO = {
  dashboard: { title: 'Dashboard', blurb: 'Events, revenue, errors, fraud and latency at a glance.' },
  search: { title: 'Search', blurb: 'Find events, save searches, export what you found.' },
  upload: { title: 'Upload', blurb: 'Send a CSV, NDJSON or JSON file of logs.' },
  fraud: { title: 'Fraud', blurb: 'Suspicious transactions to review, and what triggers them.' },
  performance: { title: 'Performance', blurb: 'Response-time percentiles per endpoint, slow requests, database latency.' },
  kibana: { title: 'Kibana', blurb: 'The Kibana dashboard over the same events.' },
  users: { title: 'Users', blurb: 'Accounts and their roles.' },
  'dead-letters': { title: 'Dead letters', blurb: 'Records the pipeline could not process, with the reason.' },
  profile: { title: 'Profile', blurb: 'Your account, password and sessions.' },
};

// ---------------------------------------------------------------------------------------------
// Errors

/** The server refused with its JSON error: status, code, message and perhaps the field. */
export class ApiFailure extends Error {
  constructor(status, error) {
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.field = error.field;
    this.retryAfter = error.retryAfter;
  }
}

/** The session is over (expired, revoked, logged out elsewhere): the user must log in again. */
export class SessionEnded extends Error {}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's page, say. The status is all there is.
  }
  const error = body && body.error ? body.error : { message: `${response.status} ${response.statusText}` };
  return { ...error, retryAfter: response.headers.get('retry-after') };
}

// ---------------------------------------------------------------------------------------------
// Session: tokens in localStorage, shared by every tab of this origin.

const session = {
  read() {
    try {
      const value = JSON.parse(localStorage.getItem(SESSION_KEY));
      return value && value.access_token && value.refresh_token ? value : null;
    } catch {
      return null;
    }
  },
  write(value) {
    localStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    localStorage.removeItem(SESSION_KEY);
  },
};

function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

let refreshing = null;

/**
 * Trades the refresh token for a new pair. Refresh tokens are single use and a reused one ends
 * the whole session, so one refresh runs at a time in this tab, and across tabs under a lock;
 * a tab that finds the token already rotated by another simply takes the new pair.
 */
function refreshTokens(spent) {
  if (!refreshing) {
    const run = async () => {
      const current = session.read();
      if (!current) throw new SessionEnded('You are logged out.');
      if (current.refresh_token !== spent) return current;
      const response = await fetch('/api/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (response.status === 401 || response.status === 400) {
        const error = await errorOf(response);
        throw new SessionEnded(error.message);
      }
      if (!response.ok) throw new ApiFailure(response.status, await errorOf(response));
      const tokens = await response.json();
      const next = { ...current, access_token: tokens.access_token, refresh_token: tokens.refresh_token };
      if (tokens.user) next.user = tokens.user;
      session.write(next);
      return next;
    };
    const locked = navigator.locks ? navigator.locks.request('sluice-token-refresh', run) : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A current access token, refreshed first once three quarters of its life are gone. */
async function accessToken() {
  let current = session.read();
  if (!current) throw sessionEnded();
  const claims = claimsOf(current.access_token);
  const now = Date.now() / 1000;
  const margin = claims ? Math.max(5, (claims.exp - claims.iat) / 4) : Infinity;
  if (!claims || claims.exp - now < margin) {
    try {
      current = await refreshTokens(current.refresh_token);
    } catch (error) {
      throw error instanceof SessionEnded ? sessionEnded(error.message) : error;
    }
  }
  return current.access_token;
}

/**
 * Forgets the session and sends the user to the login form, saying why, to come back here once
 * logged in. Several requests failing at once send the user there once.
 */
function sessionEnded(message) {
  session.clear();
  resetUser();
  const { name } = parseHash();
  if (!PUBLIC_PAGES[name]) {
    const reason = message ? `Your session has ended (${message}). Please log in again.` : 'Please log in.';
    const params = new URLSearchParams({ reason });
    if (name) params.set('next', location.hash.replace(/^#\/?/, ''));
    location.hash = `#/login?${params}`;
  }
  return new SessionEnded(message);
}

function queryString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, value);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * Calls the API as the logged-in user. Answers the parsed JSON (null for 204), or the response
 * itself with `raw`. Throws ApiFailure with the server's error, or SessionEnded (after sending
 * the user to the login form) when the session is over.
 */
async function api(path, { method = 'GET', query, body, raw = false, signal } = {}) {
  const url = path + queryString(query);
  for (let attempt = 0; ; attempt += 1) {
    const headers = { authorization: `Bearer ${await accessToken()}` };
    const init = { method, headers, signal };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 401) {
      const error = await errorOf(response);
      // The browser's clock may run behind the server's: refresh once and try again.
      if (attempt === 0 && error.code === 'token_expired') {
        try {
          await refreshTokens(session.read()?.refresh_token);
        } catch (refreshError) {
          throw refreshError instanceof SessionEnded ? sessionEnded(refreshError.message) : refreshError;
        }
        continue;
      }
      throw sessionEnded(error.message);
    }
    if (!response.ok) throw new ApiFailure(response.status, await errorOf(response));
    if (raw) return response;
    if (response.status === 204) return null;
    return response.json();
  }
}

async function logIn(username, password) {
  const response = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) throw new ApiFailure(response.status, await errorOf(response));
  const tokens = await response.json();
  session.write({ access_token: tokens.access_token, refresh_token: tokens.refresh_token, user: tokens.user });
  resetUser();
}

async function logOut({ everywhere = false } = {}) {
  try {
    await api(everywhere ? '/api/auth/logout-all' : '/api/auth/logout', { method: 'POST' });
  } catch (error) {
    // Logged out all the same: the tokens are forgotten below.
    if (!(error instanceof SessionEnded)) console.warn('logout', error);
  }
  session.clear();
  resetUser();
  navigate('#/login?reason=' + encodeURIComponent('You are logged out.'));
}

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** `el('a', {href, class, onclick}, children…)`: attributes, listeners (`on…`) and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'value') node.value = value;
    else if (key === 'checked') node.checked = Boolean(value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const numberFormat = new Intl.NumberFormat(undefined);
const moneyFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export const fmt = {
  number: (value) => (value === null || value === undefined ? '–' : numberFormat.format(value)),
  money: (value) => (value === null || value === undefined ? '–' : moneyFormat.format(value)),
  percent: (fraction) =>
    fraction === null || fraction === undefined ? '–' : `${(fraction * 100).toFixed(fraction < 0.1 ? 2 : 1)}%`,
  ms: (value) => (value === null || value === undefined ? '–' : `${numberFormat.format(Math.round(value * 10) / 10)} ms`),
  time: (value) => {
    if (value === null || value === undefined) return '–';
    const date = new Date(value);
    return Number.isNaN(date.getTime())
      ? String(value)
      : date.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  },
  shortTime: (value) => {
    const date = new Date(value);
    return date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  },
};

/**
 * Highlight fragments from the server: HTML-escaped text with `<mark>` around matches. Built
 * into nodes that can only be text and marks, whatever the string holds.
 */
export function highlighted(fragment) {
  const template = document.createElement('template');
  template.innerHTML = fragment;
  const out = document.createDocumentFragment();
  const copy = (from, to) => {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) to.append(node.textContent);
      else if (node.nodeName === 'MARK') {
        const mark = document.createElement('mark');
        copy(node, mark);
        to.append(mark);
      } else to.append(node.textContent);
    }
  };
  copy(template.content, out);
  return out;
}

function toast(message, kind = 'info') {
  const box = document.getElementById('toast');
  box.textContent = message;
  box.dataset.kind = kind;
  box.classList.add('shown');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove('shown'), 5000);
}

/** An error where the thing it broke would be; the session's end is handled elsewhere. */
function errorBox(error) {
  if (error instanceof SessionEnded) return el('p', { class: 'muted' }, 'Your session has ended.');
  const detail = error instanceof ApiFailure
    ? [error.field ? `${error.field}: ` : '', error.message, ` (${error.status} ${error.code})`]
    : [error.message || String(error)];
  return el('div', { class: 'error', role: 'alert' }, ...detail);
}

/** A key figure: its label, its value and perhaps a line under it. */
function kpi(label, value, hint) {
  return el('div', { class: 'kpi', 'data-kpi': label },
    el('div', { class: 'label' }, label), el('div', { class: 'value' }, value), hint ? el('div', { class: 'hint' }, hint) : null);
}

function download(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: fileName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---------------------------------------------------------------------------------------------
// Charts (Chart.js, vendored) in Sluice's colours, destroyed with their page.

const PALETTE = ['#0f4c81', '#e07a1f', '#2a9d8f', '#c0392b', '#8e44ad', '#7f8c8d', '#d4a017', '#1abc9c', '#34495e', '#e84393'];

function chartDefaults() {
  const Chart = window.Chart;
  if (!Chart || chartDefaults.done) return;
  chartDefaults.done = true;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = '#3c4652';
  Chart.defaults.maintainAspectRatio = false;
  if (matchMedia('(prefers-reduced-motion: reduce)').matches) Chart.defaults.animation = false;
  else Chart.defaults.animation.duration = 300;
}

// ---------------------------------------------------------------------------------------------
// Time ranges: quick ranges as buttons, any other window through a date-range picker.

const QUICK_RANGES = [
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
];

/** `{range}` or `{from, to}` from page parameters; `fallback` when neither is there. */
function rangeOf(params, fallback = { range: '24h' }) {
  if (params.from || params.to) return { from: params.from, to: params.to };
  if (params.range) return params.range === 'all' ? {} : { range: params.range };
  return fallback;
}

function describeRange(range) {
  if (range.range) return (QUICK_RANGES.find(([value]) => value === range.range) || [, range.range])[1];
  if (range.from || range.to) return `${range.from ? fmt.time(range.from) : '…'} – ${range.to ? fmt.time(range.to) : 'now'}`;
  return 'All time';
}

/**
 * A time-range control. `current` is `{range}`, `{from, to}` or `{}` (all time, with
 * `allowAll`); `onChange` gets the new one.
 */
function rangePicker(current, onChange, { allowAll = false, cleanup } = {}) {
  const group = el('div', { class: 'range', role: 'group', 'aria-label': 'Time range' });
  const choices = QUICK_RANGES.map(([value, label]) => [value, value, label]);
  if (allowAll) choices.push(['all', 'All', 'All time']);
  const buttons = [];
  const press = (chosen) => {
    for (const button of buttons) button.setAttribute('aria-pressed', String(button.dataset.range === chosen));
  };
  const custom = el('input', {
    type: 'text',
    class: 'range-custom',
    'aria-label': 'Custom time range, from and to',
    placeholder: 'Custom range…',
  });
  for (const [value, text, label] of choices) {
    const button = el('button', {
      type: 'button',
      class: 'chip',
      title: label,
      'data-range': value,
      onclick: () => {
        press(value);
        picker?.clear(false);
        custom.value = '';
        onChange(value === 'all' ? {} : { range: value });
      },
    }, text);
    buttons.push(button);
    group.append(button);
  }
  group.append(custom);
  press(current.range || (current.from || current.to ? null : 'all'));
  const picker = window.flatpickr
    ? window.flatpickr(custom, {
      mode: 'range',
      enableTime: true,
      time_24hr: true,
      allowInput: true,
      dateFormat: 'Y-m-d H:i',
      maxDate: new Date(Date.now() + 60_000),
      defaultDate: current.from && current.to ? [new Date(current.from), new Date(current.to)] : undefined,
      onClose(dates) {
        if (dates.length !== 2) return;
        press(null);
        onChange({ from: dates[0].toISOString(), to: dates[1].toISOString() });
      },
    })
    : null;
  if (picker && cleanup) cleanup(() => picker.destroy());
  return group;
}

// ---------------------------------------------------------------------------------------------
// Routing: `#/<page>?<params>`.

const PUBLIC_PAGES = { login: renderLogin, register: renderRegister };

function parseHash() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, query = ''] = hash.split('?');
  return { name: decodeURIComponent(name || ''), query: Object.fromEntries(new URLSearchParams(query)) };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Writes the page's parameters into the address without running the page again. */
function replaceParams(name, params) {
  const hash = `#/${name}${queryString(params)}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

let me = null; // {user, pages, kibana} from /api/ui
const modules = new Map();
let cleanups = [];

function resetUser() {
  me = null;
  modules.clear();
}

async function loadPage(name) {
  if (!modules.has(name)) {
    const response = await api(`/ui/pages/${name}.js`, { raw: true });
    const url = URL.createObjectURL(new Blob([await response.text()], { type: 'text/javascript' }));
    try {
      modules.set(name, await import(url));
    } finally {
      URL.revokeObjectURL(url);
    }
  }
  return modules.get(name);
}

function runCleanups() {
  const pending = cleanups;
  cleanups = [];
  for (const cleanup of pending) {
    try {
      cleanup();
    } catch (error) {
      console.warn('cleanup', error);
    }
  }
}

function freshView(title) {
  const main = document.getElementById('main');
  const view = el('div', { class: 'view' });
  main.replaceChildren(view);
  document.title = title ? `${title} · Sluice` : 'Sluice';
  return view;
}

async function route() {
  runCleanups();
  const { name, query } = parseHash();
  closeMenu();
  if (PUBLIC_PAGES[name]) {
    renderChrome();
    PUBLIC_PAGES[name](freshView(name === 'login' ? 'Log in' : 'Register'), query);
    return;
  }
  if (!session.read()) {
    const next = name ? location.hash.slice(1) : '';
    location.hash = `#/login${next ? `?next=${encodeURIComponent(next)}` : ''}`;
    return;
  }
  const page = name || DEFAULT_PAGE;
  const view = freshView(PAGE_INFO[page]?.title);
  try {
    if (!me) me = await api('/api/ui');
    renderChrome(page);
    if (!me.pages.includes(page)) {
      view.append(
        el('h1', {}, PAGE_INFO[page] ? PAGE_INFO[page].title : 'Not found'),
        el('p', { class: 'notice', role: 'alert' },
          PAGE_INFO[page]
            ? `Your role (${me.user.role}) does not open this page. Ask an administrator if you need it.`
            : 'There is no such page.'),
        el('p', {}, el('a', { href: `#/${me.pages[0] || 'profile'}` }, 'Go to your start page')),
      );
      return;
    }
    const module = await loadPage(page);
    if (!view.isConnected) return;
    await module.default(view, pageContext(page, query));
    // The page has drawn its first answers (benchmarks and tests wait for this).
    view.dataset.ready = 'true';
  } catch (error) {
    if (error instanceof SessionEnded) return;
    console.error(error);
    if (view.isConnected) view.append(errorBox(error));
  }
}

/** What a page is given: its parameters and the shell's helpers. */
function pageContext(name, params) {
  return {
    name,
    params,
    user: me.user,
    kibana: me.kibana,
    pages: me.pages,
    pageInfo: PAGE_INFO,
    field,
    kpi,
    api,
    accessToken,
    el,
    fmt,
    highlighted,
    toast,
    errorBox,
    download,
    logOut,
    navigate,
    setParams: (next) => replaceParams(name, next),
    onCleanup: (fn) => cleanups.push(fn),
    every(ms, fn) {
      const timer = setInterval(fn, ms);
      cleanups.push(() => clearInterval(timer));
      return () => clearInterval(timer);
    },
    chart(canvas, config) {
      chartDefaults();
      const chart = new window.Chart(canvas, config);
      cleanups.push(() => chart.destroy());
      return chart;
    },
    palette: PALETTE,
    rangeOf,
    describeRange,
    rangePicker: (current, onChange, options = {}) =>
      rangePicker(current, onChange, { ...options, cleanup: (fn) => cleanups.push(fn) }),
  };
}

// ---------------------------------------------------------------------------------------------
// Chrome: the menu and who is logged in.

function renderChrome(current) {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  const toggle = document.getElementById('menu-toggle');
  if (!me) {
    nav.replaceChildren();
    who.replaceChildren();
    toggle.hidden = true;
    return;
  }
  toggle.hidden = false;
  nav.replaceChildren(
    el('ul', {}, me.pages.filter((page) => page !== 'profile').map((page) =>
      el('li', {}, el('a', {
        href: `#/${page}`,
        'aria-current': page === current ? 'page' : false,
      }, PAGE_INFO[page]?.title || page)))),
  );
  who.replaceChildren(
    el('a', { href: '#/profile', 'aria-current': current === 'profile' ? 'page' : false, title: 'Your profile' },
      me.user.display_name || me.user.username, ' ', el('span', { class: 'role' }, me.user.role)),
    el('button', { type: 'button', class: 'link', onclick: () => logOut() }, 'Log out'),
  );
}

function closeMenu() {
  document.body.classList.remove('menu-open');
  document.getElementById('menu-toggle')?.setAttribute('aria-expanded', 'false');
}

// ---------------------------------------------------------------------------------------------
// Public pages

let fieldCount = 0;

/** A labelled input; a hint is its description, not part of its name. */
function field(label, input, hint) {
  fieldCount += 1;
  input.id = input.id || `field-${fieldCount}`;
  const hintNode = hint ? el('small', { id: `${input.id}-hint` }, hint) : null;
  if (hintNode) input.setAttribute('aria-describedby', hintNode.id);
  return el('div', { class: 'field' }, el('label', { for: input.id }, label), input, hintNode);
}

/** Whether the server takes new accounts (`GET /api/auth/registration`); closed if it cannot say. */
async function registrationOpen() {
  try {
    const response = await fetch('/api/auth/registration');
    return response.ok && (await response.json()).open === true;
  } catch {
    return false;
  }
}

function renderLogin(view, query) {
  if (session.read() && !query.reason) {
    navigate(`#/${query.next || DEFAULT_PAGE}`);
    return;
  }
  const status = el('div', { role: 'alert', class: query.reason ? 'notice' : '' }, query.reason || '');
  const username = el('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const password = el('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Log in');
  // Offered only where the server takes new accounts; elsewhere an administrator makes them.
  const signUp = el('p', { class: 'muted', hidden: true }, 'No account? ', el('a', { href: '#/register' }, 'Register'), ' (new accounts can see the dashboard).');
  registrationOpen().then((open) => { signUp.hidden = !open; });
  const form = el('form', { class: 'card narrow', 'aria-labelledby': 'login-title' },
    el('h1', { id: 'login-title' }, 'Log in to Sluice'),
    status,
    field('Username', username),
    field('Password', password),
    submit,
    signUp);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.className = '';
    status.textContent = '';
    try {
      await logIn(username.value.trim(), password.value);
      navigate(`#/${query.next || DEFAULT_PAGE}`);
    } catch (error) {
      status.className = 'error';
      status.textContent = error.retryAfter
        ? `${error.message} Try again in ${error.retryAfter} s.`
        : error.message;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  view.append(form);
  username.focus();
}

function renderRegister(view) {
  const status = el('div', { role: 'alert' });
  const inputs = {
    username: el('input', { name: 'username', autocomplete: 'username', required: true }),
    display_name: el('input', { name: 'display_name', autocomplete: 'name' }),
    email: el('input', { name: 'email', type: 'email', autocomplete: 'email' }),
    password: el('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true }),
  };
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Create account');
  const form = el('form', { class: 'card narrow', 'aria-labelledby': 'register-title' },
    el('h1', { id: 'register-title' }, 'Create an account'),
    status,
    field('Username', inputs.username),
    field('Display name', inputs.display_name, 'Optional'),
    field('Email', inputs.email, 'Optional'),
    field('Password', inputs.password, 'At least 10 characters, not your username'),
    submit,
    el('p', { class: 'muted' }, 'Have an account? ', el('a', { href: '#/login' }, 'Log in')));
  registrationOpen().then((open) => {
    if (open) return;
    status.className = 'notice';
    status.textContent = 'This server does not take new accounts: ask an administrator for one.';
    submit.disabled = true;
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.className = '';
    status.textContent = '';
    const body = { username: inputs.username.value.trim(), password: inputs.password.value };
    if (inputs.display_name.value.trim()) body.display_name = inputs.display_name.value.trim();
    if (inputs.email.value.trim()) body.email = inputs.email.value.trim();
    try {
      const response = await fetch('/api/auth/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!response.ok) throw new ApiFailure(response.status, await errorOf(response));
      await logIn(body.username, body.password);
      navigate(`#/${DEFAULT_PAGE}`);
    } catch (error) {
      status.className = 'error';
      status.textContent = error.field ? `${error.message}` : error.message;
      (inputs[error.field] || inputs.username).focus();
    } finally {
      submit.disabled = false;
    }
  });
  view.append(form);
  inputs.username.focus();
}

// ---------------------------------------------------------------------------------------------
// Start

document.getElementById('menu-toggle').addEventListener('click', () => {
  const open = document.body.classList.toggle('menu-open');
  document.getElementById('menu-toggle').setAttribute('aria-expanded', String(open));
});
document.getElementById('skip').addEventListener('click', (event) => {
  event.preventDefault();
  document.getElementById('main').focus();
});
// Another tab logged out or in: follow it.
window.addEventListener('storage', (event) => {
  if (event.key !== SESSION_KEY) return;
  const userOf = (value) => {
    try {
      return JSON.parse(value)?.user?.id;
    } catch {
      return undefined;
    }
  };
  if (userOf(event.oldValue) !== userOf(event.newValue)) {
    resetUser();
    route();
  }
});
window.addEventListener('hashchange', route);
route();
