// Organization: the tree of OUs and accounts, with each account's team, and
// the teams with how many accounts each has.
import {h, replace} from '../dom.js';
import {dataTable} from '../ui.js';
import {loadOrg, orgTree} from '../org.js';

export async function organizationPage(el, ctx) {
  const ix = await loadOrg();
  if (!ctx.isCurrent()) return;
  const teams = new Map();
  for (const a of ix.accounts.values()) {
    const t = ix.teamOf(a) || '(none)';
    if (!teams.has(t)) teams.set(t, {team: t, accounts: 0, examples: []});
    const row = teams.get(t);
    row.accounts += 1;
    if (row.examples.length < 3) row.examples.push(a.name);
  }
  const teamTable = dataTable({
    caption: 'Teams',
    filterLabel: 'Filter teams',
    columns: [
      {key: 'team', label: 'Team', render: (r) => h('a', {href: `#/usage?by=team`}, r.team)},
      {key: 'accounts', label: 'Accounts', numeric: true},
      {key: 'examples', label: 'For example', value: (r) => r.examples.join(', ')},
    ],
    rows: [...teams.values()],
    pageSize: 25,
  });
  replace(el,
    h('h1', {}, 'Organization'),
    h('p', {class: 'lede'}, `${ix.id}: ${ix.units.size} OUs, ${ix.accounts.size} accounts, ${teams.size} teams. Usage is metered per team: an account's own team, else its OU's name. It changes with gateway org sync or gateway apply.`),
    h('div', {class: 'two-col'},
      h('section', {'aria-labelledby': 'tree-h'}, h('h2', {id: 'tree-h'}, 'OUs and accounts'), orgTree(ix, {showTeams: true})),
      h('section', {'aria-labelledby': 'teams-h'}, h('h2', {id: 'teams-h'}, 'Teams'), teamTable.el)));
}
