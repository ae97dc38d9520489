// Shared widgets: modal dialogs, confirmations and a paged, sortable,
// filterable table (lists of thousands of accounts stay fast: only one page
// of rows is ever in the DOM).
import {h, replace} from './dom.js';

// openDialog shows a modal <dialog> (the browser traps focus in it and Esc
// closes it) and resolves with the value given to close(), or null.
export function openDialog({title, build, wide}) {
  return new Promise((resolve) => {
    const titleId = 'dlg-title-' + Math.random().toString(36).slice(2);
    const dlg = h('dialog', {class: wide ? 'wide' : null, 'aria-labelledby': titleId});
    let result = null;
    const close = (value) => { result = value === undefined ? null : value; dlg.close(); };
    const body = build(close);
    dlg.append(h('h2', {id: titleId}, title), body);
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    dlg.showModal();
    const first = dlg.querySelector('[autofocus]') || dlg.querySelector('input, textarea, select, button');
    if (first) first.focus();
  });
}

// confirm asks before something that cannot be undone: the body says what
// stops working; the confirm button names the action.
export function confirm({title, body, action, danger = true}) {
  return openDialog({title, build: (close) => h('div', {},
    h('div', {class: 'confirm-body'}, body),
    h('div', {class: 'actions'},
      h('button', {type: 'button', class: 'secondary', onclick: () => close(false)}, 'Cancel'),
      h('button', {type: 'button', class: danger ? 'danger' : 'primary', onclick: () => close(true)}, action)),
  )}).then((v) => v === true);
}

// errorBox shows an API error with its listed details.
export function errorBox(err) {
  const details = Array.isArray(err && err.details) ? err.details : [];
  return h('div', {class: 'error', role: 'alert'},
    h('p', {}, err.message || String(err)),
    details.length ? h('ul', {}, details.slice(0, 20).map((d) => h('li', {},
      [d.line ? `line ${d.line}` : null, d.value ? `${d.value}` : null, d.problem].filter(Boolean).join(': ')))) : null);
}

// dataTable renders rows in pages with a filter box and sortable headers.
// columns: [{key, label, value(row) (sort and filter value), render(row) (node
// or text; default value), numeric}]. Returns {el, setRows(rows)}.
export function dataTable({columns, rows = [], pageSize = 50, filterLabel = 'Filter', sortKey, sortDir = 'asc', empty = 'Nothing here yet.', rowKey, caption, toolbar}) {
  let all = rows;
  let filter = '';
  let page = 0;
  let key = sortKey || columns[0].key;
  let dir = sortDir;
  const colOf = (k) => columns.find((c) => c.key === k);
  const val = (c, r) => (c.value ? c.value(r) : r[c.key]);

  const filterInput = h('input', {type: 'search', class: 'filter', 'aria-label': filterLabel, placeholder: filterLabel + '…',
    oninput: () => { filter = filterInput.value.trim().toLowerCase(); page = 0; render(); }});
  const count = h('span', {class: 'count', 'aria-live': 'polite'});
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', {class: 'pager'});
  const table = h('table', {class: 'data'}, caption ? h('caption', {class: 'sr-only'}, caption) : null, thead, tbody);
  const el = h('div', {class: 'table-wrap'}, h('div', {class: 'table-tools'}, filterInput, count, toolbar || null), table, pager);

  function header() {
    replace(thead, h('tr', {}, columns.map((c) => {
      if (c.sortable === false) return h('th', {scope: 'col'}, c.label);
      const sorted = c.key === key;
      return h('th', {scope: 'col', 'aria-sort': sorted ? (dir === 'asc' ? 'ascending' : 'descending') : 'none', class: c.numeric ? 'num' : null},
        h('button', {type: 'button', class: 'sort', onclick: () => {
          if (key === c.key) dir = dir === 'asc' ? 'desc' : 'asc';
          else { key = c.key; dir = c.numeric ? 'desc' : 'asc'; }
          page = 0; render();
        }}, c.label, h('span', {class: 'arrow', 'aria-hidden': 'true'}, sorted ? (dir === 'asc' ? ' ▲' : ' ▼') : '')));
    })));
  }

  function visible() {
    let rs = all;
    if (filter) {
      rs = rs.filter((r) => columns.some((c) => c.filter !== false && String(val(c, r) ?? '').toLowerCase().includes(filter)));
    }
    const c = colOf(key);
    if (c) {
      const m = dir === 'asc' ? 1 : -1;
      rs = rs.slice().sort((a, b) => {
        const x = val(c, a), y = val(c, b);
        if (typeof x === 'number' && typeof y === 'number') return (x - y) * m;
        return String(x ?? '').localeCompare(String(y ?? ''), 'en', {numeric: true}) * m;
      });
    }
    return rs;
  }

  function render() {
    header();
    const rs = visible();
    const pages = Math.max(1, Math.ceil(rs.length / pageSize));
    if (page >= pages) page = pages - 1;
    const slice = rs.slice(page * pageSize, (page + 1) * pageSize);
    replace(tbody, slice.length ? slice.map((r) => h('tr', {dataset: rowKey ? {key: rowKey(r)} : {}},
      columns.map((c) => h(c.key === columns[0].key ? 'th' : 'td', {scope: c.key === columns[0].key ? 'row' : null, class: c.numeric ? 'num' : null},
        c.render ? c.render(r) : String(val(c, r) ?? ''))))) :
      h('tr', {}, h('td', {colspan: columns.length, class: 'empty'}, all.length ? 'No row matches the filter.' : empty)));
    count.textContent = filter ? `${rs.length} of ${all.length}` : `${all.length}`;
    replace(pager, pages > 1 ? [
      h('button', {type: 'button', class: 'secondary small', disabled: page === 0, onclick: () => { page -= 1; render(); }}, 'Previous'),
      h('span', {}, ` page ${page + 1} of ${pages} `),
      h('button', {type: 'button', class: 'secondary small', disabled: page >= pages - 1, onclick: () => { page += 1; render(); }}, 'Next'),
    ] : []);
  }

  render();
  return {el, setRows(rows) { all = rows; render(); }, refresh: render};
}

// badge renders a small status label.
export function badge(text, kind) {
  return h('span', {class: 'badge ' + (kind || '')}, text);
}

// gauge renders a used-percent bar with its number (text carries the
// meaning; the colour only repeats it).
export function gauge(percent, label) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  const kind = p >= 100 ? 'over' : p >= 80 ? 'warn' : 'ok';
  const bar = h('span', {class: 'gauge-fill ' + kind});
  bar.style.width = p + '%';
  return h('span', {class: 'gauge', role: 'img', 'aria-label': `${label ? label + ': ' : ''}${p.toFixed(1)}% used`},
    h('span', {class: 'gauge-bar'}, bar), h('span', {class: 'gauge-text'}, `${Number(percent || 0).toFixed(1)}%`));
}
