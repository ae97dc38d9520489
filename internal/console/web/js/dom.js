// Small DOM helpers. Text always goes in as text nodes, never as HTML, so
// nothing the API returns (names, descriptions, audit entries) can inject markup.

// h builds an element: h('button', {class: 'x', onclick: fn}, 'Save').
// Attributes starting with "on" become listeners; true/false toggle boolean
// attributes; null and undefined are skipped. Children may be nodes, strings,
// numbers, arrays or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value' && (tag === 'input' || tag === 'textarea' || tag === 'select')) {
      el.value = v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// clear removes every child of el and appends the given ones.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
// id returns a fresh element id for label/control pairs.
export function id(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// field builds a labelled control with a place for its validation message:
// the message element is linked by aria-describedby so screen readers read it.
export function field(label, control, hint) {
  const cid = control.id || id('f');
  control.id = cid;
  const msg = h('p', {class: 'field-error', id: cid + '-err', 'aria-live': 'polite'});
  const described = [msg.id];
  let hintEl = null;
  if (hint) {
    hintEl = h('p', {class: 'hint', id: cid + '-hint'}, hint);
    described.push(hintEl.id);
  }
  control.setAttribute('aria-describedby', described.join(' '));
  const wrap = h('div', {class: 'field'}, h('label', {for: cid}, label), control, hintEl, msg);
  wrap.setError = (text) => {
    msg.textContent = text || '';
    if (text) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
  };
  return wrap;
}

// fmtInt formats a whole number with thousands separators.
export function fmtInt(n) {
  if (n === null || n === undefined || n === '') return '';
  return Number(n).toLocaleString('en-US');
}

// fmtUSD formats dollars (the API sends them as decimal numbers).
export function fmtUSD(n) {
  const v = Number(n || 0);
  return '$' + v.toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 6});
}

// fmtTime shows an RFC 3339 time in UTC, to the second.
export function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return s;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

let toastTimer = null;
// toast announces a short message (role=status, so screen readers read it).
export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 4000);
}

// copyButton copies text to the clipboard and says so.
export function copyButton(label, getText) {
  return h('button', {type: 'button', class: 'secondary small', onclick: async (ev) => {
    const btn = ev.currentTarget;
    try {
      await navigator.clipboard.writeText(getText());
      btn.textContent = 'Copied';
    } catch {
      // Clipboard access needs a secure context or a permission: select
      // the text so Ctrl+C works instead.
      btn.textContent = 'Select and copy';
    }
    setTimeout(() => { btn.textContent = label; }, 2000);
  }}, label);
}
