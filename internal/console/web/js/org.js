// The organization: an index of its OUs and accounts, and a tree widget
// (OUs with their accounts, searchable, optionally with tick boxes) that
// renders an OU's children only when it is opened, so an organization of
// thousands of accounts costs a few dozen DOM nodes until someone looks.
import {h, replace} from './dom.js';
import {api} from './api.js';

export async function loadOrg() {
  const {organization: o} = await api.get('/admin/v1/organization');
  return indexOrg(o);
}

export function indexOrg(o) {
  const root = o.root || 'root';
  const units = new Map(o.units.map((u) => [u.id, u]));
  const accounts = new Map(o.accounts.map((a) => [a.id, a]));
  const childUnits = new Map();
  const childAccounts = new Map();
  const parentOf = (u) => (u.parent && units.has(u.parent) ? u.parent : root);
  for (const u of o.units) {
    const p = parentOf(u);
    if (!childUnits.has(p)) childUnits.set(p, []);
    childUnits.get(p).push(u);
  }
  for (const a of o.accounts) {
    const p = a.unit && units.has(a.unit) ? a.unit : root;
    if (!childAccounts.has(p)) childAccounts.set(p, []);
    childAccounts.get(p).push(a);
  }
  for (const list of [...childUnits.values(), ...childAccounts.values()]) list.sort((a, b) => a.name.localeCompare(b.name));
  // team: the account's own, else its OU's name (as the gateway meters it).
  const teamOf = (a) => a.team || (a.unit && units.has(a.unit) ? units.get(a.unit).name : '') || '';
  const describe = (id) => {
    if (id === o.id) return `the whole organization (${id})`;
    if (id === o.root) return `the organization root (${id})`;
    if (units.has(id)) return `OU ${units.get(id).name} (${id})`;
    if (accounts.has(id)) return `account ${accounts.get(id).name} (${id})`;
    return id;
  };
  const nameOf = (id) => (units.get(id) || accounts.get(id) || {}).name || '';
  // path: the OU names from the root down to id's parent.
  const pathOf = (id) => {
    const names = [];
    let cur = accounts.has(id) ? accounts.get(id).unit : units.has(id) ? units.get(id).parent : '';
    for (let i = 0; cur && units.has(cur) && i < 100; i++) {
      names.unshift(units.get(cur).name);
      cur = units.get(cur).parent;
    }
    return names.join(' / ');
  };
  return {org: o, id: o.id, root, units, accounts, childUnits, childAccounts, teamOf, describe, nameOf, pathOf};
}

// orgTree renders the tree. With selectable, each OU and account has a tick
// box and selected (a Set of IDs) tracks them; onChange is told of changes.
export function orgTree(ix, {selectable = false, selected = new Set(), onChange = () => {}, showTeams = false, label = 'Organization'} = {}) {
  const search = h('input', {type: 'search', placeholder: 'Search accounts and OUs by name, ID or team…', 'aria-label': 'Search the organization'});
  const results = h('div', {class: 'tree-results', 'aria-live': 'polite'});
  const tree = h('ul', {class: 'tree', 'aria-label': label});

  function tick(id, text) {
    if (!selectable) return null;
    const cb = h('input', {type: 'checkbox', 'aria-label': `Select ${text}`, dataset: {target: id}});
    cb.checked = selected.has(id);
    cb.addEventListener('change', () => {
      if (cb.checked) selected.add(id); else selected.delete(id);
      for (const other of document.querySelectorAll(`input[data-target="${CSS.escape(id)}"]`)) other.checked = cb.checked;
      onChange(selected);
    });
    return cb;
  }

  function accountItem(a) {
    return h('li', {class: 'account'},
      tick(a.id, `account ${a.name} ${a.id}`),
      h('span', {class: 'name'}, a.name), ' ', h('code', {}, a.id),
      showTeams || selectable ? h('span', {class: 'team'}, ix.teamOf(a)) : null,
      a.state && a.state !== 'ACTIVE' && a.state !== 'active' ? h('span', {class: 'badge warn'}, a.state) : null);
  }

  function unitItem(id, name, open) {
    const kids = h('ul', {});
    const nAcc = countAccounts(id);
    const toggle = h('button', {type: 'button', class: 'twisty', 'aria-expanded': 'false', 'aria-label': name});
    let filled = false;
    const setOpen = (v) => {
      toggle.setAttribute('aria-expanded', String(v));
      toggle.textContent = v ? '▾' : '▸';
      kids.hidden = !v;
      if (v && !filled) {
        filled = true;
        const subs = (ix.childUnits.get(id) || []).map((u) => unitItem(u.id, u.name, false));
        const accs = ix.childAccounts.get(id) || [];
        // A very large OU shows its accounts in pages.
        const page = 200;
        kids.append(...subs, ...accs.slice(0, page).map(accountItem));
        if (accs.length > page) {
          let shown = page;
          const more = h('li', {}, h('button', {type: 'button', class: 'secondary small', onclick: () => {
            const next = accs.slice(shown, shown + page);
            shown += next.length;
            more.before(...next.map(accountItem));
            if (shown >= accs.length) more.remove();
          }}, `Show more accounts (${accs.length - page} more)`));
          kids.append(more);
        }
      }
    };
    toggle.addEventListener('click', () => setOpen(toggle.getAttribute('aria-expanded') !== 'true'));
    const item = h('li', {class: 'unit'}, toggle,
      tick(id, `${name} ${id}`),
      h('span', {class: 'name'}, name), ' ', h('code', {}, id), h('span', {class: 'count'}, ` ${nAcc} account${nAcc === 1 ? '' : 's'}`), kids);
    setOpen(open);
    return item;
  }

  const counts = new Map();
  function countAccounts(id) {
    if (counts.has(id)) return counts.get(id);
    let n = (ix.childAccounts.get(id) || []).length;
    for (const u of ix.childUnits.get(id) || []) n += countAccounts(u.id);
    counts.set(id, n);
    return n;
  }

  function renderTree() {
    replace(tree, selectable ?
      h('li', {class: 'org'}, tick(ix.id, `the whole organization ${ix.id}`), h('span', {class: 'name'}, 'Whole organization'), ' ', h('code', {}, ix.id)) : null,
    unitItem(ix.root, 'Root', true));
  }

  search.addEventListener('input', () => {
    const q = search.value.trim().toLowerCase();
    if (!q) {
      results.replaceChildren();
      tree.hidden = false;
      return;
    }
    tree.hidden = true;
    const hits = [];
    for (const u of ix.units.values()) if (u.name.toLowerCase().includes(q) || u.id.includes(q)) hits.push(['u', u]);
    for (const a of ix.accounts.values()) {
      if (a.name.toLowerCase().includes(q) || a.id.includes(q) || ix.teamOf(a).toLowerCase().includes(q)) hits.push(['a', a]);
    }
    const shown = hits.slice(0, 200);
    replace(results,
      h('p', {class: 'hint'}, hits.length > shown.length ? `${hits.length} matches; the first ${shown.length} are shown, refine the search.` : `${hits.length} match${hits.length === 1 ? '' : 'es'}.`),
      h('ul', {class: 'tree flat'}, shown.map(([k, x]) => k === 'u' ?
        h('li', {class: 'unit'}, tick(x.id, `${x.name} ${x.id}`), h('span', {class: 'name'}, x.name), ' ', h('code', {}, x.id), h('span', {class: 'path'}, ix.pathOf(x.id))) :
        h('li', {class: 'account'}, tick(x.id, `account ${x.name} ${x.id}`), h('span', {class: 'name'}, x.name), ' ', h('code', {}, x.id),
          h('span', {class: 'team'}, ix.teamOf(x)), h('span', {class: 'path'}, ix.pathOf(x.id))))));
  });

  renderTree();
  return h('div', {class: 'org-tree'}, search, results, tree);
}
