// Users (moderator+): accounts with their roles, filtered by name or role and paged; change a
// role; delete an account (admin). The server enforces the rules (a moderator cannot make or
// change admins; the last admin stays); this page explains its refusals.

const ROLES = ['viewer', 'analyst', 'moderator', 'admin'];
const PAGE = 50;

export default async function users(view, ui) {
  const { el, fmt } = ui;
  const isAdmin = ui.user.role === 'admin';
  let offset = 0;
  const nameInput = el('input', { type: 'search', name: 'username', 'aria-label': 'Username', placeholder: 'Username' });
  const roleSelect = el('select', { name: 'role', 'aria-label': 'Role' }, el('option', { value: '' }, 'Any role'),
    ROLES.map((role) => el('option', { value: role }, role)));
  const filterForm = el('form', { class: 'toolbar', role: 'search' }, nameInput, roleSelect, el('button', { type: 'submit' }, 'Filter'));
  const status = el('p', { class: 'muted', 'aria-live': 'polite' });
  const body = el('tbody');
  const previous = el('button', { type: 'button', onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, '← Previous');
  const next = el('button', { type: 'button', onclick: () => { offset += PAGE; load(); } }, 'Next →');
  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Users'), filterForm),
    el('section', { class: 'card' }, status,
      el('div', { class: 'table-wrap' }, el('table', { id: 'users' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Username'), el('th', {}, 'Name'), el('th', {}, 'Email'), el('th', {}, 'Created'),
          el('th', {}, 'Role'), isAdmin ? el('th', {}, el('span', { class: 'visually-hidden' }, 'Delete')) : null)),
        body)),
      el('div', { class: 'pager' }, previous, next)));

  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    offset = 0;
    load();
  });

  function row(user) {
    const itsMe = user.id === ui.user.id;
    const roles = isAdmin ? ROLES : ROLES.filter((role) => role !== 'admin' || user.role === 'admin');
    const select = el('select', { 'aria-label': `Role of ${user.username}`, name: `role-${user.username}`, disabled: !isAdmin && user.role === 'admin' },
      roles.map((role) => el('option', { value: role, selected: role === user.role }, role)));
    select.addEventListener('change', async () => {
      const role = select.value;
      try {
        const answer = await ui.api(`/api/users/${encodeURIComponent(user.id)}`, { method: 'PUT', body: { role } });
        user.role = answer.user.role;
        ui.toast(`${user.username} is now ${user.role}.${itsMe ? ' Log in again to use your new role.' : ''}`);
      } catch (error) {
        select.value = user.role;
        ui.toast(`${user.username}: ${error.message}`, 'error');
      }
    });
    const remove = isAdmin && !itsMe
      ? el('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${user.username}`, onclick: async () => {
        if (!confirm(`Delete the account ${user.username}? Their sessions end at once.`)) return;
        try {
          await ui.api(`/api/users/${encodeURIComponent(user.id)}`, { method: 'DELETE' });
          ui.toast(`${user.username} deleted.`);
          load();
        } catch (error) {
          ui.toast(`${user.username}: ${error.message}`, 'error');
        }
      } }, 'Delete')
      : null;
    return el('tr', { 'data-username': user.username },
      el('td', {}, user.username, itsMe ? el('span', { class: 'muted' }, ' (you)') : null),
      el('td', {}, user.display_name || '–'),
      el('td', {}, user.email || '–'),
      el('td', {}, fmt.time(user.created_at)),
      el('td', {}, select),
      isAdmin ? el('td', {}, remove) : null);
  }

  async function load() {
    status.textContent = 'Loading…';
    try {
      const answer = await ui.api('/api/users', { query: { offset, limit: PAGE, username: nameInput.value.trim(), role: roleSelect.value } });
      if (!view.isConnected) return;
      body.replaceChildren(...answer.users.map(row));
      status.textContent = answer.total === 0
        ? 'No accounts match.'
        : `${fmt.number(offset + 1)}–${fmt.number(offset + answer.users.length)} of ${fmt.number(answer.total)} accounts.`;
      previous.disabled = offset === 0;
      next.disabled = offset + answer.users.length >= answer.total;
    } catch (error) {
      if (view.isConnected) status.replaceChildren(ui.errorBox(error));
    }
  }

  await load();
}
