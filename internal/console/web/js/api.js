// The admin API and the session API, called with the session cookie
// (HttpOnly: scripts never see it) and, on every change, the CSRF token the
// session handed out. The admin token itself is sent once, at sign-in, and
// never kept.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const session = {name: '', role: '', csrf: '', expiresAt: ''};
let onSignedOut = () => {};

// setSignedOutHandler is called when the API answers 401: the session ended
// (expired, signed out elsewhere, its token removed).
export function setSignedOutHandler(fn) { onSignedOut = fn; }

export function currentSession() { return {...session}; }

// canChange: operators and admins change entitlements, shares and credentials.
export function canChange() { return session.role === 'admin' || session.role === 'operator'; }
export function isAdmin() { return session.role === 'admin'; }

function adopt(body) {
  session.name = body.name || '';
  session.role = body.role || '';
  session.csrf = body.csrf_token || '';
  session.expiresAt = body.expires_at || '';
}

async function send(method, path, {json, text, contentType, signal} = {}) {
  const headers = {'Accept': 'application/json'};
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers['Content-Type'] = 'application/json';
  } else if (text !== undefined) {
    body = text;
    headers['Content-Type'] = contentType || 'text/plain';
  }
  if (method !== 'GET' && method !== 'HEAD' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let resp;
  try {
    resp = await fetch(path, {method, headers, body, credentials: 'same-origin', cache: 'no-store', signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the gateway did not answer: ' + e.message);
  }
  if (resp.status === 204) return null;
  const ct = resp.headers.get('Content-Type') || '';
  const data = ct.includes('json') ? await resp.json().catch(() => null) : await resp.text();
  if (!resp.ok) {
    const err = data && data.error ? data.error : {code: 'http_' + resp.status, message: typeof data === 'string' && data ? data.trim() : resp.statusText};
    const e = new ApiError(resp.status, err.code, err.message, err.details);
    if (resp.status === 401 && !path.startsWith('/console/api/session')) onSignedOut();
    throw e;
  }
  return data;
}

export const api = {
  get: (path, opts) => send('GET', path, opts),
  post: (path, json) => send('POST', path, {json}),
  postText: (path, text, contentType) => send('POST', path, {text, contentType}),
  patch: (path, json) => send('PATCH', path, {json}),
  del: (path) => send('DELETE', path),
};

// enc escapes one path segment.
export const enc = encodeURIComponent;

export async function signIn(token) {
  const body = await send('POST', '/console/api/session', {json: {token}});
  adopt(body);
  return currentSession();
}

// resume returns the current session, or null when signed out.
export async function resume() {
  try {
    adopt(await send('GET', '/console/api/session'));
    return currentSession();
  } catch (e) {
    if (e.status === 401 || e.status === 404) return null;
    throw e;
  }
}

export async function signOut() {
  try {
    await send('DELETE', '/console/api/session');
  } finally {
    adopt({});
  }
}
