// Usage for finance: a month, grouped by team, account, entitlement or
// model; tokens by type and cost; a chart of daily tokens per team; cap
// gauges this month; and the CSV that `gateway usage -o csv` prints.
import {h, replace, field, fmtInt, fmtUSD} from '../dom.js';
import {api, enc} from '../api.js';
import {dataTable, gauge} from '../ui.js';
import {navigate} from '../nav.js';

const GROUPS = [['team', 'Team'], ['account', 'Account'], ['entitlement', 'Entitlement'], ['model', 'Model']];

function thisMonth() {
  const d = new Date();
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

export async function usagePage(el, ctx) {
  const month = /^\d{4}-\d{2}$/.test(ctx.params.get('month') || '') ? ctx.params.get('month') : '';
  const by = GROUPS.some(([g]) => g === ctx.params.get('by')) ? ctx.params.get('by') : 'team';
  const q = `group_by=${by}${month ? '&month=' + month : ''}`;
  const rep = await api.get('/admin/v1/usage?' + q);
  if (!ctx.isCurrent()) return;
  const shownMonth = rep.month || month || thisMonth();

  const picker = h('input', {type: 'month', value: shownMonth, max: thisMonth()});
  const go = (m, g) => navigate(`#/usage?month=${m}&by=${g}`);
  picker.addEventListener('change', () => { if (picker.value) go(picker.value, by); });
  const tabs = h('div', {role: 'tablist', class: 'tabs', 'aria-label': 'Group usage by'}, GROUPS.map(([g, label]) =>
    h('button', {type: 'button', role: 'tab', 'aria-selected': String(g === by), tabindex: g === by ? '0' : '-1', onclick: () => go(shownMonth, g),
      onkeydown: (ev) => {
        const i = GROUPS.findIndex(([x]) => x === g);
        if (ev.key === 'ArrowRight') go(shownMonth, GROUPS[(i + 1) % GROUPS.length][0]);
        if (ev.key === 'ArrowLeft') go(shownMonth, GROUPS[(i + GROUPS.length - 1) % GROUPS.length][0]);
      }}, label)));
  const csvHref = `/admin/v1/usage?month=${shownMonth}&group_by=${by}&format=csv`;

  const keyCol = {
    team: {key: 'team', label: 'Team'},
    account: {key: 'account', label: 'Account', value: (r) => `${r.account} ${r.account_name || ''}`, render: (r) => h('span', {}, h('code', {}, r.account), ' ', r.account_name || '')},
    entitlement: {key: 'entitlement', label: 'Entitlement'},
    model: {key: 'model', label: 'Model', render: (r) => h('code', {}, r.model)},
  }[by];
  const n = (k, label) => ({key: k, label, numeric: true, value: (r) => Number(r[k] || 0), render: (r) => fmtInt(r[k] || 0)});
  const table = dataTable({
    caption: `Usage ${shownMonth} by ${by}`,
    filterLabel: `Filter ${by}s`,
    sortKey: 'total_tokens', sortDir: 'desc',
    columns: [keyCol, n('requests', 'Requests'), n('input_tokens', 'Input'), n('output_tokens', 'Output'),
      n('cache_read_tokens', 'Cache read'), n('cache_write_tokens', 'Cache write'), n('total_tokens', 'Total tokens'),
      {key: 'cost_usd', label: 'Cost', numeric: true, value: (r) => Number(r.cost_usd || 0), render: (r) => fmtUSD(r.cost_usd)}],
    rows: rep.rows || [],
    empty: `No usage recorded in ${shownMonth}.`,
  });
  const t = rep.totals || {};
  const chart = h('div', {class: 'chart', id: 'daily-chart'});
  const caps = h('div', {class: 'caps-grid'});

  replace(el,
    h('h1', {}, 'Usage'),
    h('div', {class: 'toolbar'}, field('Month', picker), tabs,
      h('a', {class: 'button secondary', href: csvHref, download: `usage-${shownMonth}.csv`, id: 'csv-download'}, 'Download CSV')),
    h('dl', {class: 'totals'},
      h('div', {}, h('dt', {}, 'Requests'), h('dd', {}, fmtInt(t.requests || 0))),
      h('div', {}, h('dt', {}, 'Input tokens'), h('dd', {}, fmtInt(t.input_tokens || 0))),
      h('div', {}, h('dt', {}, 'Output tokens'), h('dd', {}, fmtInt(t.output_tokens || 0))),
      h('div', {}, h('dt', {}, 'Cache read / write'), h('dd', {}, `${fmtInt(t.cache_read_tokens || 0)} / ${fmtInt(t.cache_write_tokens || 0)}`)),
      h('div', {}, h('dt', {}, 'Total tokens'), h('dd', {id: 'total-tokens'}, fmtInt(t.total_tokens || 0))),
      h('div', {}, h('dt', {}, 'Cost'), h('dd', {}, fmtUSD(t.cost_usd)))),
    rep.unpriced_models && rep.unpriced_models.length ? h('p', {class: 'notice'}, `No price for ${rep.unpriced_models.join(', ')}: their cost counts as $0.`) : null,
    rep.note ? h('p', {class: 'hint'}, rep.note) : null,
    table.el,
    h('h2', {}, `Daily tokens per team, ${shownMonth}`), chart,
    shownMonth === thisMonth() ? [h('h2', {}, 'Caps this month'), caps] : null);

  drawDaily(chart, shownMonth, ctx);
  if (shownMonth === thisMonth()) drawCaps(caps, ctx);
}

async function drawDaily(el, month, ctx) {
  let body;
  try {
    body = await api.get(`/admin/v1/usage/daily?month=${month}&group_by=team`);
  } catch (e) {
    replace(el, h('p', {class: 'muted'}, e.status === 404 || e.status === 501 ? 'The daily breakdown is not available on this gateway.' : `Daily usage unavailable: ${e.message}`));
    return;
  }
  if (!ctx.isCurrent()) return;
  const days = body.days || [];
  const teams = [...new Set(days.flatMap((d) => (d.groups || []).map((g) => g.key)))].sort();
  if (!days.length || !teams.length) {
    replace(el, h('p', {class: 'muted'}, `No usage recorded in ${month}.`));
    return;
  }
  // One x value per day of the month, so the axis shows the whole month.
  const [y, m] = month.split('-').map(Number);
  const nDays = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const xs = [];
  const byDate = new Map(days.map((d) => [d.date, d]));
  const series = teams.map(() => []);
  for (let d = 1; d <= nDays; d++) {
    const date = `${month}-${String(d).padStart(2, '0')}`;
    xs.push(Date.UTC(y, m - 1, d) / 1000);
    const day = byDate.get(date);
    teams.forEach((team, i) => {
      const g = day && (day.groups || []).find((x) => x.key === team);
      series[i].push(g ? (g.input_tokens || 0) + (g.output_tokens || 0) + (g.cache_read_input_tokens || 0) + (g.cache_write_input_tokens || 0) : 0);
    });
  }
  // Colours distinguishable with the common colour-vision deficiencies
  // (Okabe-Ito); the legend names each team too.
  const palette = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];
  const table = h('table', {class: 'sr-only'}, h('caption', {}, 'Daily tokens per team'),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Day'), teams.map((t) => h('th', {scope: 'col'}, t)))),
    h('tbody', {}, xs.map((x, i) => h('tr', {}, h('th', {scope: 'row'}, new Date(x * 1000).toISOString().slice(0, 10)), series.map((s) => h('td', {}, String(s[i])))))));
  replace(el, table);
  if (!window.uPlot) {
    el.append(h('p', {class: 'muted'}, 'The chart library did not load.'));
    return;
  }
  const width = Math.max(320, Math.min(1000, el.clientWidth || 900));
  const plot = new window.uPlot({
    width, height: 280,
    scales: {x: {time: true}},
    // Days are the gateway's (UTC here), not the browser's time zone.
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    axes: [{}, {values: (u, vals) => vals.map((v) => fmtInt(v)), size: 70}],
    series: [{label: 'Day', value: (u, v) => (v == null ? '' : new Date(v * 1000).toISOString().slice(0, 10))},
      ...teams.map((t, i) => ({label: t, stroke: palette[i % palette.length], width: 2, points: {show: true}, value: (u, v) => (v == null ? '' : fmtInt(v))}))],
  }, [xs, ...series], el);
  plot.root.setAttribute('role', 'img');
  plot.root.setAttribute('aria-label', `Daily tokens per team in ${month}: ${teams.join(', ')}`);
}

async function drawCaps(el, ctx) {
  const {entitlements} = await api.get('/admin/v1/entitlements');
  const capped = entitlements.filter((e) => e.limits.monthly_tokens > 0);
  if (!capped.length) {
    replace(el, h('p', {class: 'muted'}, 'No entitlement has a monthly cap.'));
    return;
  }
  const items = [];
  for (const e of capped.slice(0, 60)) {
    if (!ctx.isCurrent()) return;
    try {
      const q = await api.get(`/admin/v1/entitlements/${enc(e.name)}/quota`);
      const c = (q.caps || []).find((x) => x.level === 'entitlement') || {used: 0, limit: e.limits.monthly_tokens, percent_used: 0};
      items.push(h('div', {class: 'cap'}, h('a', {href: '#/entitlements/' + enc(e.name)}, e.name), gauge(c.percent_used, e.name),
        h('span', {class: 'muted'}, `${fmtInt(c.used)} of ${fmtInt(c.limit)} tokens`)));
    } catch { /* one unavailable report does not hide the others */ }
  }
  replace(el, items, capped.length > 60 ? h('p', {class: 'hint'}, `${capped.length - 60} more capped entitlements: see the Entitlements page.`) : null);
}
