// Profile (viewer+): who you are and what your role opens, your name and email, your password,
// and your sessions.

export default async function profile(view, ui) {
  const { el, fmt } = ui;
  const { user } = await ui.api('/api/auth/me');
  const { field } = ui;

  const links = ui.pages.filter((page) => page !== 'profile').map((page) =>
    el('li', {}, el('a', { href: `#/${page}` }, ui.pageInfo[page]?.title || page), ' — ', ui.pageInfo[page]?.blurb || ''));

  const displayName = el('input', { name: 'display_name', autocomplete: 'name', value: user.display_name || '' });
  const email = el('input', { name: 'email', type: 'email', autocomplete: 'email', value: user.email || '' });
  const details = el('form', { class: 'card span-6' }, el('h2', {}, 'Your details'),
    field('Display name', displayName), field('Email', email), el('button', { type: 'submit', class: 'primary' }, 'Save'));
  details.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await ui.api('/api/auth/me', {
        method: 'PUT',
        body: { display_name: displayName.value.trim() || null, email: email.value.trim() || null },
      });
      ui.toast('Saved.');
    } catch (error) {
      ui.toast(error.message, 'error');
    }
  });

  const current = el('input', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true });
  const fresh = el('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true });
  const password = el('form', { class: 'card span-6' }, el('h2', {}, 'Password'),
    field('Current password', current), field('New password', fresh, 'At least 10 characters. Your other sessions end.'),
    el('button', { type: 'submit' }, 'Change password'));
  password.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const answer = await ui.api('/api/auth/change-password', {
        method: 'POST',
        body: { current_password: current.value, new_password: fresh.value },
      });
      current.value = '';
      fresh.value = '';
      ui.toast(`Password changed; ${answer.other_sessions_ended} other session(s) ended.`);
    } catch (error) {
      ui.toast(error.message, 'error');
    }
  });

  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, user.display_name || user.username)),
    el('div', { class: 'grid' },
      el('section', { class: 'card span-6' }, el('h2', {}, 'Account'),
        el('p', {}, 'Username: ', el('strong', {}, user.username)),
        el('p', {}, 'Role: ', el('span', { class: 'badge', id: 'my-role' }, user.role)),
        el('p', { class: 'muted' }, `Member since ${fmt.time(user.created_at)}`),
        el('div', { class: 'toolbar' },
          el('button', { type: 'button', onclick: () => ui.logOut() }, 'Log out'),
          el('button', { type: 'button', class: 'danger', onclick: () => ui.logOut({ everywhere: true }) }, 'Log out everywhere'))),
      el('section', { class: 'card span-6' }, el('h2', {}, 'Quick links'), el('ul', { id: 'quick-links' }, links)),
      details,
      password));
}
