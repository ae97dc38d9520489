// Credentials: the list, issue (the secret is shown once, with copy buttons
// and the environment lines an SDK reads), and revoke.
import {h, replace, field, fmtTime, toast, copyButton} from '../dom.js';
import {api, enc, canChange} from '../api.js';
import {dataTable, confirm, openDialog, errorBox, badge} from '../ui.js';
import {loadOrg} from '../org.js';
import {navigate} from '../nav.js';

export async function credentialsPage(el, ctx) {
  const [{credentials}, ix] = await Promise.all([api.get('/admin/v1/credentials'), loadOrg()]);
  if (!ctx.isCurrent()) return;
  const change = canChange();
  const table = dataTable({
    caption: 'Credentials',
    filterLabel: 'Filter by account, label or key',
    sortKey: 'created', sortDir: 'desc',
    rowKey: (c) => c.id,
    columns: [
      {key: 'id', label: 'ID', render: (c) => h('code', {}, c.id)},
      {key: 'account', label: 'Account', value: (c) => `${c.account} ${ix.nameOf(c.account)}`, render: (c) => h('span', {}, h('code', {}, c.account), ' ', ix.nameOf(c.account))},
      {key: 'team', label: 'Team', value: (c) => (ix.accounts.get(c.account) ? ix.teamOf(ix.accounts.get(c.account)) : '')},
      {key: 'kind', label: 'Kind', render: (c) => badge(c.kind === 'api_key' ? 'API key' : 'SigV4', '')},
      {key: 'label', label: 'Label'},
      {key: 'key', label: 'Access key ID', value: (c) => c.access_key_id || '', render: (c) => c.access_key_id ? h('code', {}, c.access_key_id) : h('span', {class: 'muted'}, 'bearer key')},
      {key: 'created', label: 'Issued', value: (c) => c.created_at || '', render: (c) => fmtTime(c.created_at)},
      {key: 'expires', label: 'Expires', value: (c) => c.expires_at || '', render: (c) => c.expires_at ? fmtTime(c.expires_at) : 'never'},
      {key: 'actions', label: 'Actions', sortable: false, filter: false, value: () => '', render: (c) => change ?
        h('button', {type: 'button', class: 'danger small', onclick: () => revoke(c, ix)}, 'Revoke') : h('span', {class: 'muted'}, '—')},
    ],
    rows: credentials,
    empty: 'No credentials yet.',
    toolbar: change ? h('button', {type: 'button', class: 'primary', onclick: () => issue(ix)}, 'Issue credential') : null,
  });
  replace(el, h('h1', {}, 'Credentials'),
    h('p', {class: 'lede'}, 'Keys member accounts call the gateway with. Secrets are shown once, when issued, and never again.'),
    table.el);
}

async function revoke(c, ix) {
  const ok = await confirm({
    title: `Revoke credential ${c.id}?`,
    body: [h('p', {}, `Calls signed with ${c.access_key_id ? 'access key ' + c.access_key_id : 'this API key'} (${c.label || 'no label'}, account ${ix.nameOf(c.account) || ''} ${c.account}) will be refused on every replica within a second.`),
      h('p', {}, 'Applications using it stop working until they get a new credential. This cannot be undone.')],
    action: 'Revoke credential',
  });
  if (!ok) return;
  try {
    await api.del(`/admin/v1/credentials/${enc(c.id)}`);
    toast(`Revoked ${c.id}.`);
    navigate(location.hash);
  } catch (err) {
    await openDialog({title: 'Revoke failed', build: (close) => h('div', {}, errorBox(err), h('div', {class: 'actions'}, h('button', {type: 'button', onclick: () => close()}, 'Close')))});
  }
}

async function issue(ix) {
  const account = h('input', {type: 'text', list: 'accounts-list', autocomplete: 'off', required: true, autofocus: true, spellcheck: 'false', placeholder: '12-digit account ID'});
  const accounts = h('datalist', {id: 'accounts-list'}, [...ix.accounts.values()].slice(0, 5000).map((a) => h('option', {value: a.id}, `${a.name} (${ix.teamOf(a)})`)));
  const kind = h('select', {}, h('option', {value: 'sigv4'}, 'SigV4 access key (any AWS SDK)'), h('option', {value: 'api_key'}, 'API key (bearer, AWS_BEARER_TOKEN_BEDROCK; needs HTTPS)'));
  const label = h('input', {type: 'text', autocomplete: 'off', placeholder: 'the application, e.g. support-bot'});
  const expires = h('input', {type: 'date'});
  const f = {account: field('Account', account), kind: field('Kind', kind), label: field('Label', label), expires: field('Expires (optional)', expires, 'Empty: never.')};
  const cfg = await api.get('/console/config.json').catch(() => ({}));
  await openDialog({title: 'Issue credential', wide: true, build: (close) => {
    const err = h('div', {'aria-live': 'assertive'});
    const body = h('div', {});
    const submit = h('button', {type: 'submit', class: 'primary'}, 'Issue');
    const form = h('form', {novalidate: true, onsubmit: async (ev) => {
      ev.preventDefault();
      err.replaceChildren();
      f.account.setError('');
      const acc = account.value.trim();
      if (!/^\d{12}$/.test(acc)) { f.account.setError(`account "${acc}" is not a 12-digit account ID`); account.focus(); return; }
      if (!ix.accounts.has(acc)) { f.account.setError(`account ${acc} is not one of the accounts`); account.focus(); return; }
      const req = {account: acc, kind: kind.value, label: label.value.trim()};
      if (expires.value) req.expires_at = new Date(expires.value + 'T00:00:00Z').toISOString().replace(/\.\d+Z$/, 'Z');
      submit.disabled = true;
      try {
        const res = await api.post('/admin/v1/credentials', req);
        replace(body, secretView(res, cfg, close));
      } catch (e) {
        if (/account/.test(e.message)) f.account.setError(e.message);
        else err.append(errorBox(e));
        submit.disabled = false;
      }
    }}, err, accounts, h('div', {class: 'grid2'}, f.account, f.kind, f.label, f.expires),
    h('div', {class: 'actions'}, h('button', {type: 'button', class: 'secondary', onclick: () => close()}, 'Cancel'), submit));
    body.append(form);
    return body;
  }});
  navigate(location.hash);
}

// secretView shows a new credential's secret once.
function secretView(res, cfg, close) {
  const c = res.credential;
  const endpoint = (cfg.data_endpoint || 'https://<gateway address>').replace('{host}', location.hostname);
  const lines = c.kind === 'api_key' ?
    [`AWS_BEARER_TOKEN_BEDROCK=${res.api_key}`, 'AWS_REGION=us-east-1', `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=${endpoint}`] :
    [`AWS_ACCESS_KEY_ID=${c.access_key_id}`, `AWS_SECRET_ACCESS_KEY=${res.secret_access_key}`, 'AWS_REGION=us-east-1', `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=${endpoint}`];
  const env = lines.join('\n');
  const secret = c.kind === 'api_key' ? res.api_key : res.secret_access_key;
  return h('div', {class: 'secret-once'},
    h('p', {class: 'notice', role: 'alert'}, 'Copy the secret now: it is shown only this once. The gateway keeps no readable copy.'),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Credential'), h('dd', {}, h('code', {}, c.id)),
      c.access_key_id ? [h('dt', {}, 'Access key ID'), h('dd', {}, h('code', {id: 'new-akid'}, c.access_key_id), ' ', copyButton('Copy', () => c.access_key_id))] : null,
      h('dt', {}, c.kind === 'api_key' ? 'API key' : 'Secret access key'), h('dd', {}, h('code', {id: 'new-secret', class: 'secret'}, secret), ' ', copyButton('Copy', () => secret))),
    h('p', {}, 'For an AWS SDK or the AWS CLI, in the environment:'),
    h('pre', {id: 'new-env', tabindex: '0'}, env), copyButton('Copy environment lines', () => env),
    (res.warnings || []).map((w) => h('p', {class: 'notice'}, w)),
    h('div', {class: 'actions'}, h('button', {type: 'button', class: 'primary', onclick: () => close(true)}, 'I have copied it')));
}
