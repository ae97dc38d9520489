// Audit log: every change, newest first, filtered by actor, action, target
// and time; older entries page in with the API's cursor.
import {h, replace, field, fmtTime} from '../dom.js';
import {api} from '../api.js';
import {navigate} from '../nav.js';
import {errorBox} from '../ui.js';

const LIMIT = 100;

export async function auditPage(el, ctx) {
  const p = ctx.params;
  const filters = {actor: p.get('actor') || '', action: p.get('action') || '', target: p.get('target') || '', since: p.get('since') || ''};
  const query = (before) => {
    const q = new URLSearchParams({limit: String(LIMIT)});
    for (const k of ['actor', 'action', 'target']) if (filters[k]) q.set(k, filters[k]);
    if (filters.since) q.set('since', new Date(filters.since + 'T00:00:00Z').toISOString().replace(/\.\d+Z$/, 'Z'));
    if (before) q.set('before', before);
    return '/admin/v1/audit?' + q;
  };
  const {entries} = await api.get(query(''));
  if (!ctx.isCurrent()) return;

  const inputs = {
    actor: h('input', {type: 'search', value: filters.actor, placeholder: 'admin:ops'}),
    action: h('input', {type: 'search', value: filters.action, placeholder: 'share.remove', list: 'audit-actions'}),
    target: h('input', {type: 'search', value: filters.target, placeholder: 'entitlement, credential…'}),
    since: h('input', {type: 'date', value: filters.since}),
  };
  const actions = h('datalist', {id: 'audit-actions'}, ['entitlement.create', 'entitlement.update', 'entitlement.delete', 'share.add', 'share.remove',
    'credential.issue', 'credential.revoke', 'organization.replace', 'apply', 'principal.deny', 'principal.allow'].map((a) => h('option', {value: a})));
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter the audit log', onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, i] of Object.entries(inputs)) if (i.value.trim()) q.set(k, i.value.trim());
    navigate('#/audit?' + q);
  }}, field('Actor', inputs.actor), field('Action', inputs.action), field('Target', inputs.target), field('Since', inputs.since), actions,
  h('div', {class: 'actions left'}, h('button', {type: 'submit', class: 'primary'}, 'Filter'), h('a', {class: 'button secondary', href: '#/audit'}, 'Clear')));

  const tbody = h('tbody');
  const more = h('div', {class: 'pager'});
  const row = (e) => h('tr', {},
    h('td', {}, fmtTime(e.time)), h('td', {}, e.actor), h('td', {}, h('code', {}, e.action)), h('td', {}, e.target),
    h('td', {}, e.before || e.after ? h('details', {}, h('summary', {}, 'Before and after'),
      e.before ? [h('h3', {}, 'Before'), h('pre', {}, JSON.stringify(e.before, null, 2))] : null,
      e.after ? [h('h3', {}, 'After'), h('pre', {}, JSON.stringify(e.after, null, 2))] : null) : ''));
  const add = (list) => {
    tbody.append(...list.map(row));
    more.replaceChildren();
    if (list.length === LIMIT) {
      const last = list[list.length - 1].id;
      more.append(h('button', {type: 'button', class: 'secondary', onclick: async () => {
        try { add((await api.get(query(last))).entries || []); } catch (e) { more.replaceChildren(errorBox(e)); }
      }}, 'Older entries'));
    }
  };
  add(entries);
  replace(el, h('h1', {}, 'Audit log'), form,
    h('table', {class: 'data audit'}, h('caption', {class: 'sr-only'}, 'Audit entries, newest first'),
      h('thead', {}, h('tr', {}, ['Time (UTC)', 'Actor', 'Action', 'Target', 'Change'].map((t) => h('th', {scope: 'col'}, t)))),
      tbody),
    entries.length ? null : h('p', {class: 'muted'}, 'No entries match.'), more);
}
