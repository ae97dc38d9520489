// Entitlements: the list (name, model, scope, caps with used % this month,
// shares, status), one entitlement's page (caps, shares, revoke), the create
// and edit form, and delete.
import {h, replace, field, fmtInt, fmtTime, toast} from '../dom.js';
import {api, enc, canChange} from '../api.js';
import {dataTable, badge, gauge, confirm, openDialog, errorBox} from '../ui.js';
import {loadOrg} from '../org.js';
import {navigate} from '../nav.js';
import {shareDialog} from './share.js';
import {trackInForce, versionOf} from '../replicas.js';

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// The API's own message for a bad name, so the form says the same thing.
const nameMessage = (n) => `name "${n}" must be 1 to 63 lowercase letters, digits or -, starting and ending with a letter or digit`;

export async function entitlementsPage(el, ctx) {
  if (ctx.args.length > 0) return entitlementPage(el, ctx.args[0], ctx);
  const [{entitlements}, ix] = await Promise.all([api.get('/admin/v1/entitlements'), loadOrg()]);
  if (!ctx.isCurrent()) return;
  const usage = new Map(); // name -> quota report
  const hasCaps = (e) => e.limits.monthly_tokens > 0 || e.limits.account_monthly_tokens > 0 || (e.shares || []).some((s) => s.monthly_tokens > 0);
  const capCell = (e) => {
    if (!hasCaps(e)) return h('span', {class: 'muted'}, 'no monthly cap');
    const q = usage.get(e.name);
    const parts = [];
    if (e.limits.monthly_tokens > 0) parts.push(h('div', {}, `${fmtInt(e.limits.monthly_tokens)} / month`));
    if (e.limits.account_monthly_tokens > 0) parts.push(h('div', {class: 'muted'}, `${fmtInt(e.limits.account_monthly_tokens)} per account`));
    if (q === undefined) parts.push(h('div', {class: 'muted'}, 'used: loading…'));
    else if (q === null) parts.push(h('div', {class: 'muted'}, 'used: unavailable'));
    else parts.push(gauge(maxUsed(q), `${e.name} cap`));
    return h('div', {}, parts);
  };
  const table = dataTable({
    caption: 'Managed entitlements',
    filterLabel: 'Filter by name, model, scope or status',
    rowKey: (e) => e.name,
    columns: [
      {key: 'name', label: 'Name', render: (e) => h('a', {href: '#/entitlements/' + enc(e.name)}, e.name)},
      {key: 'model', label: 'Model', render: (e) => h('code', {}, e.model)},
      {key: 'scope', label: 'Scope', value: (e) => (e.scope || []).map((id) => ix.nameOf(id) || id).join(', ') || 'whole organization',
        render: (e) => scopeText(ix, e.scope)},
      {key: 'used', label: 'Caps, used this month', numeric: true, value: (e) => { const q = usage.get(e.name); return q ? maxUsed(q) : -1; }, render: capCell, filter: false},
      {key: 'shares', label: 'Shares', numeric: true, value: (e) => (e.shares || []).length},
      {key: 'state', label: 'Status', value: (e) => e.state || 'active', render: (e) => badge(e.state || 'active', e.state === 'suspended' ? 'warn' : 'ok')},
    ],
    rows: entitlements,
    empty: 'No entitlements yet: create one to share a model.',
    toolbar: canChange() ? h('button', {type: 'button', class: 'primary', onclick: () => entitlementForm(null, ix)}, 'Create managed entitlement') : null,
  });
  replace(el, h('h1', {}, 'Entitlements'),
    h('p', {class: 'lede'}, 'Models the hub shares with member accounts and OUs. Open one to share it, revoke a share or change its caps.'),
    table.el);
  // Used % comes from one quota report per capped entitlement, a few at a
  // time, so 200 entitlements do not open 200 requests at once.
  const queue = entitlements.filter(hasCaps).map((e) => e.name);
  let pending = 0;
  const worker = async () => {
    while (queue.length && ctx.isCurrent()) {
      const name = queue.shift();
      try { usage.set(name, await api.get(`/admin/v1/entitlements/${enc(name)}/quota`)); } catch { usage.set(name, null); }
      if (++pending % 10 === 0 || queue.length === 0) table.refresh();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (ctx.isCurrent()) table.refresh();
}

// maxUsed is the fullest cap's used percent (the one that refuses first).
function maxUsed(q) {
  return (q.caps || []).reduce((m, c) => Math.max(m, Number(c.percent_used) || 0), 0);
}

function scopeText(ix, scope) {
  if (!scope || scope.length === 0) return h('span', {}, 'whole organization');
  return h('span', {}, scope.map((id, i) => [i ? ', ' : null, h('span', {title: id}, id === ix.id || id === ix.root ? 'whole organization' : ix.nameOf(id) || id)]));
}

async function entitlementPage(el, name, ctx) {
  const [{entitlement: e}, ix] = await Promise.all([api.get(`/admin/v1/entitlements/${enc(name)}`), loadOrg()]);
  let quota = null;
  try { quota = await api.get(`/admin/v1/entitlements/${enc(name)}/quota`); } catch { /* caps shown without usage */ }
  if (!ctx.isCurrent()) return;
  const change = canChange();
  const status = h('p', {class: 'inforce', id: 'inforce', 'aria-live': 'polite'});
  const shares = dataTable({
    caption: `Shares of ${e.name}`,
    filterLabel: 'Filter shares',
    rowKey: (s) => s.target,
    columns: [
      {key: 'target', label: 'Shared with', value: (s) => s.target, render: (s) => h('span', {}, h('code', {}, s.target), ' ', ix.nameOf(s.target))},
      {key: 'kind', label: 'Kind', value: (s) => kindOf(ix, s.target)},
      {key: 'path', label: 'Where', value: (s) => ix.pathOf(s.target)},
      {key: 'cap', label: 'Share cap (tokens / month)', numeric: true, value: (s) => s.monthly_tokens || 0, render: (s) => s.monthly_tokens ? fmtInt(s.monthly_tokens) : '—'},
      {key: 'actions', label: 'Actions', sortable: false, filter: false, value: () => '', render: (s) => change ?
        h('button', {type: 'button', class: 'danger small', onclick: () => revoke(e, s, ix, status)}, 'Revoke') : h('span', {class: 'muted'}, '—')},
    ],
    rows: e.shares || [],
    sortKey: 'target',
    empty: 'Not shared with anyone: nobody can call it yet.',
    pageSize: 25,
  });
  const capRows = quota && quota.caps && quota.caps.length ? h('table', {class: 'data caps'},
    h('caption', {}, `Caps this month (${quota.month}), reset ${fmtTime(quota.reset_at)}`),
    h('thead', {}, h('tr', {}, ['Cap', 'Limit', 'Used', 'Reserved', 'Remaining', 'Used %'].map((t, i) => h('th', {scope: 'col', class: i ? 'num' : null}, t)))),
    h('tbody', {}, quota.caps.map((c) => h('tr', {},
      h('th', {scope: 'row'}, `${c.level}${c.target && c.target !== e.name ? ' ' + c.target : ''}`),
      h('td', {class: 'num'}, fmtInt(c.limit)), h('td', {class: 'num'}, fmtInt(c.used)), h('td', {class: 'num'}, fmtInt(c.reserved)),
      h('td', {class: 'num'}, fmtInt(c.remaining)), h('td', {class: 'num'}, gauge(c.percent_used, `${c.level} cap`)))))) :
    h('p', {class: 'muted'}, 'No monthly caps apply (or none has usage yet this month).');
  const L = e.limits || {};
  replace(el,
    h('p', {class: 'crumbs'}, h('a', {href: '#/entitlements'}, 'Entitlements'), ' / ', e.name),
    h('h1', {}, e.name, ' ', badge(e.state || 'active', e.state === 'suspended' ? 'warn' : 'ok')),
    e.description ? h('p', {class: 'lede'}, e.description) : null,
    change ? h('div', {class: 'actions left'},
      h('button', {type: 'button', class: 'primary', onclick: () => shareDialog(e, ix).then((done) => { if (done) navigate(location.hash); })}, 'Share'),
      h('button', {type: 'button', class: 'secondary', onclick: () => entitlementForm(e, ix)}, 'Edit'),
      h('button', {type: 'button', class: 'danger', onclick: () => remove(e, ix)}, 'Delete')) : null,
    status,
    h('dl', {class: 'facts'},
      h('dt', {}, 'Model'), h('dd', {}, h('code', {}, e.model)),
      h('dt', {}, 'Region'), h('dd', {}, e.region || 'the gateway\'s'),
      h('dt', {}, 'Scope'), h('dd', {}, scopeText(ix, e.scope)),
      h('dt', {}, 'Monthly tokens'), h('dd', {}, L.monthly_tokens ? fmtInt(L.monthly_tokens) : 'no cap'),
      h('dt', {}, 'Per account'), h('dd', {}, L.account_monthly_tokens ? fmtInt(L.account_monthly_tokens) + ' tokens / month' : 'no cap'),
      h('dt', {}, 'Rate limits'), h('dd', {}, [L.requests_per_minute ? `${fmtInt(L.requests_per_minute)} requests/min` : null, L.tokens_per_minute ? `${fmtInt(L.tokens_per_minute)} tokens/min` : null].filter(Boolean).join(', ') || 'none'),
      h('dt', {}, 'Counts'), h('dd', {}, L.count || 'total', ' tokens; when Redis is down: ', L.on_store_unavailable || 'fail_closed'),
      h('dt', {}, 'Operations'), h('dd', {}, (e.operations || []).join(', ') || 'all runtime operations'),
      h('dt', {}, 'Updated'), h('dd', {}, fmtTime(e.updated_at))),
    h('h2', {}, 'Caps'), capRows,
    h('h2', {}, 'Shares'), shares.el);
}

function kindOf(ix, id) {
  if (id === ix.id || id === ix.root) return 'organization';
  if (ix.units.has(id)) return 'OU';
  if (ix.accounts.has(id)) return 'account';
  return 'principal';
}

// revoke removes one share after a confirmation naming who loses access.
async function revoke(e, s, ix, status) {
  const who = ix.describe(s.target);
  const ok = await confirm({
    title: `Revoke ${e.name} from ${ix.nameOf(s.target) || s.target}?`,
    body: [h('p', {}, `Calls to ${e.name} from ${who}`, kindOf(ix, s.target) === 'OU' ? ' and every account beneath it' : '',
      ' will be refused with AccessDeniedException, unless another share still covers them.'),
    h('p', {}, 'Calls already running finish; nothing else changes.')],
    action: 'Revoke share',
  });
  if (!ok) return;
  let body;
  try {
    body = await api.del(`/admin/v1/entitlements/${enc(e.name)}/shares/${enc(s.target)}`);
  } catch (err) {
    replace(status, errorBox(err));
    return;
  }
  toast(`Revoked ${e.name} from ${s.target}.`);
  // Re-render the page, then follow the change to every replica.
  navigate(location.hash);
  const el = await waitFor('#inforce');
  if (el) {
    el.dataset.change = `revoke ${s.target}`;
    trackInForce(el, versionOf(body));
  }
}

// waitFor resolves with the element once the re-rendered page has it.
async function waitFor(sel) {
  for (let i = 0; i < 100; i++) {
    const el = document.querySelector(`.page:not([aria-busy]) ${sel}`);
    if (el) return el;
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

async function remove(e, ix) {
  const n = (e.shares || []).length;
  const ok = await confirm({
    title: `Delete ${e.name}?`,
    body: [h('p', {}, `Every call to ${e.name} (upstream ${e.model}) will be refused with AccessDeniedException.`),
      n ? h('p', {}, `It is shared with ${n} target${n === 1 ? '' : 's'}: `, (e.shares || []).slice(0, 10).map((s, i) => [i ? ', ' : '', ix.nameOf(s.target) || s.target]), n > 10 ? ` and ${n - 10} more` : '', '. They all lose access.') :
        h('p', {}, 'It is not shared with anyone.'),
      h('p', {}, 'Its usage stays in the reports. Recreating it later starts with no shares.')],
    action: `Delete ${e.name}`,
  });
  if (!ok) return;
  try {
    await api.del(`/admin/v1/entitlements/${enc(e.name)}`);
  } catch (err) {
    await openDialog({title: 'Delete failed', build: (close) => h('div', {}, errorBox(err), h('div', {class: 'actions'}, h('button', {type: 'button', onclick: () => close()}, 'Close')))});
    return;
  }
  toast(`Deleted ${e.name}.`);
  navigate('#/entitlements');
}

// fieldFor maps one of the API's validation problems to the form field it is about.
function fieldFor(problem) {
  const p = problem.replace(/^[^:]*\): /, '');
  const checks = [
    [/limits\.monthly_tokens|^monthly_tokens/, 'monthly_tokens'],
    [/limits\.account_monthly_tokens/, 'account_monthly_tokens'],
    [/limits\.requests_per_minute/, 'requests_per_minute'],
    [/limits\.tokens_per_minute/, 'tokens_per_minute'],
    [/alert_thresholds/, 'alert_thresholds'],
    [/limits\.count/, 'count'],
    [/on_store_unavailable/, 'on_store_unavailable'],
    [/\bscope\b|share target .* outside the scope/, 'scope'],
    [/\bmodel\b/, 'model'],
    [/\bregion\b/, 'region'],
    [/\bdescription\b/, 'description'],
    [/\bstate\b/, 'state'],
    [/\bname\b|already exists/, 'name'],
  ];
  for (const [re, f] of checks) if (re.test(p)) return f;
  return null;
}

// entitlementForm creates (e null) or edits an entitlement. Messages come
// from the API and land next to the field they are about.
async function entitlementForm(e, ix) {
  const editing = !!e;
  const L = (e && e.limits) || {};
  const num = (v) => h('input', {type: 'text', inputmode: 'numeric', value: v ? String(v) : '', autocomplete: 'off'});
  const c = {
    name: h('input', {type: 'text', value: e ? e.name : '', required: true, autocomplete: 'off', disabled: editing, autofocus: !editing, spellcheck: 'false'}),
    model: h('input', {type: 'text', value: e ? e.model : '', required: true, autocomplete: 'off', spellcheck: 'false', list: 'model-suggestions', autofocus: editing}),
    region: h('input', {type: 'text', value: e ? e.region || '' : '', autocomplete: 'off', spellcheck: 'false'}),
    description: h('textarea', {rows: 2, value: e ? e.description || '' : ''}),
    scope: h('textarea', {rows: 2, value: e ? (e.scope || []).join('\n') : ix.id, spellcheck: 'false'}),
    monthly_tokens: num(L.monthly_tokens),
    account_monthly_tokens: num(L.account_monthly_tokens),
    requests_per_minute: num(L.requests_per_minute),
    tokens_per_minute: num(L.tokens_per_minute),
    count: h('select', {}, ['total', 'input', 'output'].map((v) => h('option', {value: v}, v))),
    alert_thresholds: h('input', {type: 'text', value: (L.alert_thresholds || []).join(', '), autocomplete: 'off'}),
    on_store_unavailable: h('select', {}, [['fail_closed', 'fail closed (refuse with 503)'], ['fail_open', 'fail open (local rate limit)']].map(([v, t]) => h('option', {value: v}, t))),
    state: h('select', {}, ['active', 'suspended'].map((v) => h('option', {value: v}, v))),
  };
  c.count.value = L.count || 'total';
  c.on_store_unavailable.value = L.on_store_unavailable || 'fail_closed';
  c.state.value = (e && e.state) || 'active';
  const f = {
    name: field('Name', c.name, 'Lowercase letters, digits and -. Callers use it as the model ID.'),
    model: field('Upstream model', c.model, 'A Bedrock model ID, inference profile ID or ARN.'),
    region: field('Region (optional)', c.region, 'Empty: the gateway\'s upstream region.'),
    description: field('Description (optional)', c.description),
    scope: field('Scope', c.scope, `The outer boundary of who it may be shared with: the organization (${ix.id}), OU or account IDs, one a line.`),
    monthly_tokens: field('Monthly tokens, whole entitlement', c.monthly_tokens, 'Empty: no cap.'),
    account_monthly_tokens: field('Monthly tokens per account', c.account_monthly_tokens, 'Empty: no cap.'),
    requests_per_minute: field('Requests per minute per account', c.requests_per_minute),
    tokens_per_minute: field('Tokens per minute per account', c.tokens_per_minute),
    count: field('Caps count', c.count),
    alert_thresholds: field('Budget alerts at (%)', c.alert_thresholds, 'Empty: 50, 80, 100.'),
    on_store_unavailable: field('When Redis is unreachable', c.on_store_unavailable),
    state: field('Status', c.state),
  };
  const formError = h('div', {'aria-live': 'assertive'});
  const models = h('datalist', {id: 'model-suggestions'}, ['anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic.claude-3-5-sonnet-20241022-v2:0',
    'amazon.nova-lite-v1:0', 'amazon.nova-pro-v1:0', 'meta.llama3-1-70b-instruct-v1:0', 'amazon.titan-embed-text-v2:0'].map((m) => h('option', {value: m})));

  const numbers = ['monthly_tokens', 'account_monthly_tokens', 'requests_per_minute', 'tokens_per_minute'];
  function collect() {
    const errs = {};
    const v = (k) => c[k].value.trim();
    if (!editing && !NAME_RE.test(v('name'))) errs.name = nameMessage(v('name'));
    if (!v('model')) errs.model = 'model is missing';
    const limits = {};
    for (const k of numbers) {
      const s = v(k).replace(/[,_\s]/g, '');
      if (s === '') continue;
      if (!/^\d+$/.test(s)) { errs[k] = `limits.${k} must be a whole number of tokens, not negative`; continue; }
      limits[k] = Number(s);
    }
    if (v('alert_thresholds')) {
      const ts = v('alert_thresholds').split(/[\s,]+/).filter(Boolean).map(Number);
      if (ts.some((t) => !Number.isInteger(t))) errs.alert_thresholds = 'limits.alert_thresholds: give whole percentages, such as 50, 80, 100';
      else limits.alert_thresholds = ts;
    }
    if (c.count.value !== 'total') limits.count = c.count.value;
    if (c.on_store_unavailable.value !== 'fail_closed') limits.on_store_unavailable = c.on_store_unavailable.value;
    // Keep what the form does not show (estimate) as it was.
    if (L.estimate) limits.estimate = L.estimate;
    const body = {
      model: v('model'), region: v('region'), description: c.description.value.trim(),
      scope: v('scope').split(/[\s,]+/).filter(Boolean), limits, state: c.state.value,
    };
    if (!editing) body.name = v('name');
    return {body, errs};
  }

  function showErrors(errs) {
    for (const [k, fw] of Object.entries(f)) fw.setError(errs[k] || '');
    const first = Object.keys(f).find((k) => errs[k]);
    if (first) c[first].focus();
  }

  return openDialog({title: editing ? `Edit ${e.name}` : 'Create managed entitlement', wide: true, build: (close) => {
    const submit = h('button', {type: 'submit', class: 'primary'}, editing ? 'Save' : 'Create');
    const form = h('form', {novalidate: true, onsubmit: async (ev) => {
      ev.preventDefault();
      formError.replaceChildren();
      const {body, errs} = collect();
      showErrors(errs);
      if (Object.keys(errs).length) return;
      submit.disabled = true;
      try {
        const res = editing ? await api.patch(`/admin/v1/entitlements/${enc(e.name)}`, body) : await api.post('/admin/v1/entitlements', body);
        close(true);
        toast(editing ? `Saved ${e.name}.` : `Created ${res.entitlement.name}.`);
        navigate('#/entitlements/' + enc(res.entitlement.name));
      } catch (err) {
        const byField = {};
        const problems = Array.isArray(err.details) ? err.details.map((d) => d.problem) : [err.message];
        const rest = [];
        for (const p of problems) {
          const k = fieldFor(p || '');
          if (k && !byField[k]) byField[k] = p.replace(/^[^:]*\): /, '');
          else if (!k) rest.push(p);
        }
        showErrors(byField);
        if (rest.length || !Object.keys(byField).length) formError.append(errorBox(err));
      } finally {
        submit.disabled = false;
      }
    }},
    formError,
    h('div', {class: 'grid2'}, f.name, f.model, f.region, f.state),
    f.description, f.scope,
    h('fieldset', {}, h('legend', {}, 'Usage limits'),
      h('div', {class: 'grid2'}, f.monthly_tokens, f.account_monthly_tokens, f.requests_per_minute, f.tokens_per_minute, f.count, f.alert_thresholds, f.on_store_unavailable)),
    models,
    h('div', {class: 'actions'}, h('button', {type: 'button', class: 'secondary', onclick: () => close(false)}, 'Cancel'), submit));
    return form;
  }});
}
