// "In force on every replica": after a change, poll GET /admin/v1/replicas
// until every live replica serves a snapshot at least as new as the change.
// Gateways without that endpoint (404) only say "applied": the admin API
// answers a change once this replica serves it.
import {api} from './api.js';

// trackInForce updates el with the change's progress. version is the
// change's state_version when the API said it; otherwise the first poll's
// store version stands in (it is at least the change's).
export async function trackInForce(el, version, {interval = 500, timeoutMs = 60000} = {}) {
  el.dataset.inforce = 'pending';
  el.textContent = 'Applied on this replica; checking the other replicas…';
  const deadline = Date.now() + timeoutMs;
  let want = version || 0;
  for (;;) {
    let body;
    try {
      body = await api.get('/admin/v1/replicas');
    } catch (e) {
      if (e.status === 404 || e.status === 501) {
        el.dataset.inforce = 'applied';
        el.textContent = 'Applied.';
        return 'applied';
      }
      el.dataset.inforce = 'unknown';
      el.textContent = `Applied on this replica; replica status unavailable: ${e.message}`;
      return 'unknown';
    }
    if (!want) want = Number(body.state_version || 0);
    const replicas = body.replicas || [];
    const behind = replicas.filter((r) => Number(r.snapshot_version) < want);
    if (behind.length === 0) {
      el.dataset.inforce = 'all';
      el.textContent = `In force on every replica (${replicas.length} replica${replicas.length === 1 ? '' : 's'}, state version ${want}).`;
      return 'all';
    }
    el.textContent = `In force on ${replicas.length - behind.length} of ${replicas.length} replicas; waiting for ${behind.map((r) => r.id).join(', ')}…`;
    if (Date.now() > deadline) {
      el.dataset.inforce = 'late';
      el.textContent += ' (still waiting after a minute: check those replicas)';
      return 'late';
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

// versionOf reads the state version a change answered with, if any.
export function versionOf(body) {
  return body && typeof body === 'object' && body.state_version ? Number(body.state_version) : 0;
}
