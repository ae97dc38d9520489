// The console's shell: the session, the navigation and a hash router
// (#/entitlements, #/usage?month=2026-11, ...), so every page has a URL that
// can be bookmarked and the back button works, without any server routes.
import {h, replace, field} from './dom.js';
import {ApiError, currentSession, resume, setSignedOutHandler, signIn, signOut} from './api.js';
import {errorBox} from './ui.js';
import {entitlementsPage} from './pages/entitlements.js';
import {usagePage} from './pages/usage.js';
import {credentialsPage} from './pages/credentials.js';
import {organizationPage} from './pages/organization.js';
import {auditPage} from './pages/audit.js';

const pages = {
  entitlements: entitlementsPage,
  usage: usagePage,
  credentials: credentialsPage,
  organization: organizationPage,
  audit: auditPage,
};

const main = document.getElementById('main');
const top = document.getElementById('top');
let signedIn = false;
let renderSeq = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return {page: parts[0] || 'entitlements', args: parts.slice(1), params: new URLSearchParams(query || '')};
}

async function route(ev) {
  if (!signedIn) return;
  const moved = !!ev;
  // A dialog belongs to the page it was opened on (Back closes it too).
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  const {page, args, params} = parseHash();
  const render = pages[page] || pages.entitlements;
  for (const a of top.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const seq = ++renderSeq;
  const container = h('div', {class: 'page', 'aria-busy': 'true'}, h('p', {class: 'loading'}, 'Loading…'));
  replace(main, container);
  try {
    await render(container, {args, params, isCurrent: () => seq === renderSeq});
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) return; // signed out: handled
    replace(container, errorBox(e));
  } finally {
    container.removeAttribute('aria-busy');
  }
  document.title = `${(container.querySelector('h1') || {}).textContent || 'Console'} · Bedrock Entitlement Gateway`;
  // After a page change, keyboard and screen-reader users start at the new
  // page's content, not at the link they left.
  if (moved && !document.querySelector('dialog[open]')) main.focus({preventScroll: true});
}

function showSignIn(message) {
  signedIn = false;
  top.hidden = true;
  const token = h('input', {type: 'password', name: 'token', autocomplete: 'current-password', required: true, autofocus: true});
  const tokenField = field('Admin token', token, 'An admin, operator or viewer token of this gateway. It is exchanged for a session cookie and not kept by the browser.');
  const status = h('div', {'aria-live': 'assertive'});
  if (message) status.append(h('p', {class: 'notice'}, message));
  const button = h('button', {type: 'submit', class: 'primary'}, 'Sign in');
  const form = h('form', {class: 'signin', onsubmit: async (ev) => {
    ev.preventDefault();
    tokenField.setError('');
    status.replaceChildren();
    if (!token.value) { tokenField.setError('Enter a token.'); token.focus(); return; }
    button.disabled = true;
    try {
      await signIn(token.value);
      token.value = '';
      enter();
    } catch (e) {
      if (e.status === 401) tokenField.setError(e.message || 'That token is not accepted.');
      else status.append(errorBox(e));
      token.focus();
    } finally {
      button.disabled = false;
    }
  }}, h('h1', {}, 'Sign in'), h('p', {}, 'Bedrock Entitlement Gateway console'), tokenField, button, status);
  replace(main, form);
  document.title = 'Sign in · Bedrock Entitlement Gateway';
  token.focus();
}

function enter() {
  signedIn = true;
  const s = currentSession();
  top.hidden = false;
  document.body.dataset.role = s.role;
  replace(document.getElementById('who'), h('span', {}, s.name), ' ', h('span', {class: 'badge role'}, s.role));
  route();
}

document.getElementById('signout').addEventListener('click', async () => {
  try { await signOut(); } catch { /* the session is gone either way */ }
  location.hash = '';
  showSignIn('Signed out.');
});

setSignedOutHandler(() => showSignIn('Your session ended; sign in again.'));
window.addEventListener('hashchange', route);

(async () => {
  let s = null;
  try {
    s = await resume();
  } catch (e) {
    replace(main, errorBox(e));
    return;
  }
  if (s) enter();
  else showSignIn();
})();
