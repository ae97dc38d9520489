// The Share dialog: tick OUs and accounts in the organization tree, or paste
// a CSV of account IDs; either way a preview from the API shows every row
// accepted or refused, and why, before anything is applied. Only accepted
// rows are then shared.
import {h, replace, field, fmtInt, toast} from '../dom.js';
import {api, enc} from '../api.js';
import {openDialog, errorBox, badge} from '../ui.js';
import {orgTree} from '../org.js';

const PAGE = 200;

export function shareDialog(e, ix) {
  return openDialog({title: `Share ${e.name}`, wide: true, build: (close) => {
    const selected = new Set();
    let mode = 'tree';
    let preview = null; // {source, total, accepted, refused, rows (first page), fetchPage(offset)}

    const picked = h('p', {class: 'hint', 'aria-live': 'polite'}, 'Nothing ticked yet.');
    const tree = orgTree(ix, {selectable: true, selected, label: `Organization: pick targets for ${e.name}`, onChange: (set) => {
      picked.textContent = set.size ? `${set.size} ticked: ${[...set].slice(0, 5).map((id) => ix.nameOf(id) || id).join(', ')}${set.size > 5 ? '…' : ''}` : 'Nothing ticked yet.';
      invalidate();
    }});
    const csv = h('textarea', {rows: 8, spellcheck: 'false', placeholder: 'account_id,monthly_tokens\n222222222222\n333333333333,2000000', oninput: () => invalidate()});
    const csvField = field('Account or OU IDs (CSV)', csv, 'One target a line; an optional second column is that share\'s monthly token cap. A header line is allowed.');
    const cap = h('input', {type: 'text', inputmode: 'numeric', autocomplete: 'off', oninput: () => invalidate()});
    const capField = field('Per-share monthly token cap (optional)', cap, 'Applies to each new share without its own; empty: no share cap (the entitlement\'s caps still apply).');

    const tabTree = h('button', {type: 'button', role: 'tab', id: 'tab-tree', 'aria-controls': 'panel-tree', 'aria-selected': 'true'}, 'Pick from the organization');
    const tabCsv = h('button', {type: 'button', role: 'tab', id: 'tab-csv', 'aria-controls': 'panel-csv', 'aria-selected': 'false', tabindex: '-1'}, 'Paste a CSV');
    const panelTree = h('div', {role: 'tabpanel', id: 'panel-tree', 'aria-labelledby': 'tab-tree'}, tree, picked);
    const panelCsv = h('div', {role: 'tabpanel', id: 'panel-csv', 'aria-labelledby': 'tab-csv', hidden: true}, csvField);
    const setMode = (m) => {
      mode = m;
      tabTree.setAttribute('aria-selected', String(m === 'tree'));
      tabCsv.setAttribute('aria-selected', String(m === 'csv'));
      tabTree.tabIndex = m === 'tree' ? 0 : -1;
      tabCsv.tabIndex = m === 'csv' ? 0 : -1;
      panelTree.hidden = m !== 'tree';
      panelCsv.hidden = m !== 'csv';
      invalidate();
    };
    tabTree.addEventListener('click', () => setMode('tree'));
    tabCsv.addEventListener('click', () => { setMode('csv'); csv.focus(); });
    const tabs = h('div', {role: 'tablist', class: 'tabs', 'aria-label': 'How to pick targets', onkeydown: (ev) => {
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        const next = mode === 'tree' ? tabCsv : tabTree;
        next.click(); next.focus();
      }
    }}, tabTree, tabCsv);

    const out = h('div', {class: 'preview', 'aria-live': 'polite'});
    const previewBtn = h('button', {type: 'button', class: 'secondary'}, 'Preview');
    const applyBtn = h('button', {type: 'button', class: 'primary', disabled: true}, 'Share');

    function invalidate() {
      preview = null;
      applyBtn.disabled = true;
      applyBtn.textContent = 'Share';
      out.replaceChildren();
    }

    // request is what the preview and the final call are sent: the CSV as
    // typed (text/csv), or the ticked targets (JSON).
    function request() {
      const capText = cap.value.trim().replace(/[,_\s]/g, '');
      if (capText && !/^\d+$/.test(capText)) {
        capField.setError('monthly_tokens must be a whole number of tokens, not negative');
        return null;
      }
      capField.setError('');
      const monthly = capText ? Number(capText) : 0;
      if (mode === 'csv') {
        if (!csv.value.trim()) { csvField.setError('Paste at least one account or OU ID.'); csv.focus(); return null; }
        csvField.setError('');
        return {kind: 'csv', text: csv.value, monthly};
      }
      if (selected.size === 0) { picked.textContent = 'Tick at least one OU or account.'; return null; }
      return {kind: 'json', targets: [...selected], monthly};
    }

    async function fetchPage(req, offset) {
      const q = `offset=${offset}&limit=${PAGE}`;
      const base = `/admin/v1/entitlements/${enc(e.name)}/shares/preview?${q}`;
      if (req.kind === 'csv') return api.postText(base + (req.monthly ? `&monthly_tokens=${req.monthly}` : ''), req.text, 'text/csv');
      return api.post(base, {targets: req.targets, monthly_tokens: req.monthly});
    }

    function renderPreview(req, page) {
      const rows = page.rows || [];
      const pages = Math.max(1, Math.ceil(page.total / PAGE));
      const cur = Math.floor((page.offset || 0) / PAGE);
      replace(out,
        h('p', {class: 'summary'}, h('strong', {}, `${fmtInt(page.accepted)} accepted`), ', ',
          h('strong', {class: page.refused ? 'bad' : null}, `${fmtInt(page.refused)} refused`), ` of ${fmtInt(page.total)} rows.`,
          page.refused ? ' Refused rows are left out; only accepted ones are shared.' : ''),
        h('table', {class: 'data preview-rows'},
          h('caption', {class: 'sr-only'}, 'Preview of every row'),
          h('thead', {}, h('tr', {}, ['Row', 'Target', 'Name', 'Cap', 'Verdict', 'Why'].map((t) => h('th', {scope: 'col'}, t)))),
          h('tbody', {}, rows.map((r) => h('tr', {class: r.verdict === 'accepted' ? 'ok' : 'refused', dataset: {verdict: r.verdict, target: r.target || ''}},
            h('td', {}, r.line ? `line ${r.line}` : (r.index !== undefined ? `#${r.index + 1}` : '')),
            h('td', {}, h('code', {}, r.target || '')),
            h('td', {}, ix.nameOf(r.target) || ''),
            h('td', {class: 'num'}, r.monthly_tokens ? fmtInt(r.monthly_tokens) : '—'),
            h('td', {}, badge(r.verdict, r.verdict === 'accepted' ? 'ok' : 'bad')),
            h('td', {}, r.reason || '', r.detail && r.detail !== r.reason ? h('div', {class: 'hint'}, r.detail) : null))))),
        pages > 1 ? h('div', {class: 'pager'},
          h('button', {type: 'button', class: 'secondary small', disabled: cur === 0, onclick: () => goto(req, (cur - 1) * PAGE)}, 'Previous'),
          h('span', {}, ` rows ${page.offset + 1}–${Math.min(page.total, page.offset + rows.length)} of ${page.total} `),
          h('button', {type: 'button', class: 'secondary small', disabled: cur >= pages - 1, onclick: () => goto(req, (cur + 1) * PAGE)}, 'Next')) : null);
    }

    async function goto(req, offset) {
      try { renderPreview(req, await fetchPage(req, offset)); } catch (err) { replace(out, errorBox(err)); }
    }

    previewBtn.addEventListener('click', async () => {
      const req = request();
      if (!req) return;
      previewBtn.disabled = true;
      replace(out, h('p', {class: 'loading'}, 'Checking every row…'));
      try {
        const page = await fetchPage(req, 0);
        preview = {req, total: page.total, accepted: page.accepted};
        renderPreview(req, page);
        applyBtn.disabled = page.accepted === 0;
        applyBtn.textContent = page.accepted ? `Share with ${fmtInt(page.accepted)} accepted target${page.accepted === 1 ? '' : 's'}` : 'Nothing to share';
      } catch (err) {
        replace(out, errorBox(err));
      } finally {
        previewBtn.disabled = false;
      }
    });

    applyBtn.addEventListener('click', async () => {
      if (!preview) return;
      applyBtn.disabled = true;
      try {
        // Every accepted row, all pages; grouped by cap, as the shares
        // endpoint takes one cap per JSON request.
        const groups = new Map();
        for (let off = 0; off < preview.total; off += PAGE) {
          const page = await fetchPage(preview.req, off);
          for (const r of page.rows || []) {
            if (r.verdict !== 'accepted') continue;
            const m = r.monthly_tokens || 0;
            if (!groups.has(m)) groups.set(m, []);
            groups.get(m).push(r.target);
          }
        }
        let n = 0;
        for (const [m, targets] of groups) {
          await api.post(`/admin/v1/entitlements/${enc(e.name)}/shares`, {targets, monthly_tokens: m});
          n += targets.length;
        }
        toast(`Shared ${e.name} with ${n} target${n === 1 ? '' : 's'}.`);
        close(true);
      } catch (err) {
        replace(out, errorBox(err));
        applyBtn.disabled = false;
      }
    });

    return h('div', {},
      h('p', {}, 'Pick OUs (every account beneath them, including accounts added later) or accounts, then preview. Nothing changes until you press Share.'),
      tabs, panelTree, panelCsv, capField,
      h('div', {class: 'actions left'}, previewBtn), out,
      h('div', {class: 'actions'}, h('button', {type: 'button', class: 'secondary', onclick: () => close(false)}, 'Cancel'), applyBtn));
  }});
}
