// The status page as server-rendered HTML: the whole page works without JavaScript (the filter is a
// GET form, pages are links); with it, the page's script re-fetches the live part every few seconds.
// Every value comes from the cluster, so every value goes through escapeHtml. Pure.
import { plural, type AddressRow, type Cell, type CellState, type Decision, type NodeRow, type ServiceImportDetail, type StatusPage, type StatusQuery } from './model.js';
import type { StatusEvent } from './events.js';

/** Who serves the page, shown in its header. */
export interface PageSource {
  /** The controller's pod name. */
  identity: string;
  leading: boolean;
  /** Where the decisions come from. */
  decisions: 'leader' | 'computed';
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe inside an element or a quoted attribute. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

const CELL_TEXT: Record<CellState, string> = { reachable: '✓ reachable', unreachable: '✗ unreachable', 'not-probed': '– not probed', refused: '⊘ refused' };

/** The query string of `query` with `changes` applied; defaults left out. */
export function queryString(query: StatusQuery, changes: Partial<StatusQuery> = {}): string {
  const merged = { ...query, ...changes };
  const params = new URLSearchParams();
  for (const key of ['namespace', 'serviceImport', 'address', 'node'] as const) if (merged[key]) params.set(key, merged[key]);
  if (merged.problems) params.set('problems', '1');
  if (merged.page && merged.page > 1) params.set('page', String(merged.page));
  const text = params.toString();
  return text ? `?${text}` : '';
}

function formatRtt(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

function cellHtml(address: string, cell: Cell): string {
  const rtt = cell.rttMs === undefined ? '' : ` <span class="rtt">${escapeHtml(formatRtt(cell.rttMs))}</span>`;
  return `<td class="cell ${cell.state}" data-node="${escapeHtml(cell.node)}" data-state="${cell.state}" title="${escapeHtml(`${cell.node} → ${address}`)}">${CELL_TEXT[cell.state]}${rtt}</td>`;
}

function rowHtml(row: AddressRow): string {
  const cells = row.cells.map((cell) => cellHtml(row.address, cell)).join('');
  return `<tr data-address="${escapeHtml(row.address)}" data-decision="${row.decision}"><th scope="row">${escapeHtml(row.address)}</th>${cells}<td class="decision ${row.decision}">${decisionLabel(row.decision)}</td><td class="why">${escapeHtml(row.why)}</td></tr>`;
}

function decisionLabel(decision: Decision): string {
  return decision.replace(/-/g, ' ');
}

function serviceImportHtml(si: ServiceImportDetail): string {
  const nodes = si.rows[0]?.cells.map((cell) => `<th scope="col">${escapeHtml(cell.node)}</th>`).join('') ?? '';
  const counts = [
    plural(si.addresses, 'address', 'addresses'),
    si.unreachable ? `${si.unreachable} seen unreachable` : '',
    si.disconnected ? `${si.disconnected} disconnected (${si.pruned} pruned)` : '',
    si.heldBack ? `${si.heldBack} held back` : '',
  ].filter(Boolean);
  const body = si.rows.length > 0 ? si.rows.map(rowHtml).join('\n') : '<tr><td>no address matches</td></tr>';
  return `<section class="si" data-serviceimport="${escapeHtml(`${si.namespace}/${si.name}`)}">
<h3>${escapeHtml(si.namespace)}/<b>${escapeHtml(si.name)}</b> <small>${escapeHtml(counts.join(' · '))}</small></h3>
<table class="matrix"><thead><tr><th scope="col">address</th>${nodes}<th scope="col">decision</th><th scope="col">why</th></tr></thead>
<tbody>
${body}
</tbody></table></section>`;
}

function nodesHtml(nodes: readonly NodeRow[]): string {
  const rows = nodes
    .map(
      (node) =>
        `<tr data-node="${escapeHtml(node.name)}"><th scope="row">${escapeHtml(node.name)}</th><td class="node ${node.state}">${escapeHtml(node.state)}</td><td>${escapeHtml(node.configVersion ?? '')}</td><td>${escapeHtml(node.heartbeatTime ?? '')}</td><td>${escapeHtml(node.targetsProbed ?? '')}</td><td>${node.unreachable}</td><td>${escapeHtml(node.probesPerSecond ?? '')}</td><td>${escapeHtml(node.meanLatenessMs ?? '')}</td><td>${escapeHtml(node.probeReplicas)}</td><td>${escapeHtml(node.agentVersion ?? '')}</td><td class="why">${escapeHtml(node.reason ?? '')}</td></tr>`,
    )
    .join('\n');
  return `<table class="nodes"><thead><tr><th scope="col">node</th><th scope="col">state</th><th scope="col">config</th><th scope="col">heartbeat</th><th scope="col">targets</th><th scope="col">unreachable</th><th scope="col">probes/s</th><th scope="col">late (ms)</th><th scope="col">probeReplicas</th><th scope="col">agent</th><th scope="col">why</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="11">no reports</td></tr>'}
</tbody></table>`;
}

function eventsHtml(events: readonly StatusEvent[]): string {
  const rows = events
    .map(
      (e) =>
        `<tr><td>${escapeHtml(e.time)}</td><td class="event ${e.type === 'Warning' ? 'warning' : 'normal'}">${escapeHtml(e.type)}</td><td>${escapeHtml(e.reason)}</td><td>${escapeHtml(`${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name}`)}</td><td>${escapeHtml(e.count)}</td><td class="why">${escapeHtml(e.message)}</td></tr>`,
    )
    .join('\n');
  return `<table class="events"><thead><tr><th scope="col">last seen</th><th scope="col">type</th><th scope="col">reason</th><th scope="col">object</th><th scope="col">count</th><th scope="col">message</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="6">none recorded by this controller since it started</td></tr>'}
</tbody></table>`;
}

function pagerHtml(page: StatusPage): string {
  if (page.pages <= 1) return '';
  const { query } = page;
  const link = (target: number, text: string): string =>
    target === query.page || target < 1 || target > page.pages ? `<span>${text}</span>` : `<a href="/status${escapeHtml(queryString(query, { page: target }))}">${text}</a>`;
  return `<nav class="pager">${link(query.page - 1, '← previous')} page ${query.page} of ${page.pages} ${link(query.page + 1, 'next →')}</nav>`;
}

/** The part of the page that live updates replace. */
export function renderLive(page: StatusPage, source: PageSource): string {
  const t = page.totals;
  const nodes = Object.entries(t.nodes)
    .filter(([, count]) => count > 0)
    .map(([state, count]) => `${count} ${state}`)
    .join(', ');
  const decisions =
    source.decisions === 'leader' ? 'decisions of this replica, the leader, at its last pass' : 'decisions computed here by the leader’s rule (this replica does not lead)';
  return `<p class="summary">Generated ${escapeHtml(page.generatedAt)} by ${escapeHtml(source.identity)} (${source.leading ? 'leader' : 'standby'}; ${decisions}).
Configuration ${escapeHtml(page.configVersion)}. ${plural(t.serviceImports, 'ServiceImport')}, ${plural(t.addresses, 'address', 'addresses')}: ${t.unreachable} seen unreachable, ${t.disconnected} disconnected, ${t.heldBack} held back. Nodes: ${escapeHtml(nodes || 'none')}.</p>
<h2>Nodes</h2>
${nodesHtml(page.nodes)}
<h2>ServiceImports <small>${page.matching} matching${page.query.problems ? ' (with problems)' : ''}, problems first</small></h2>
${pagerHtml(page)}
${page.serviceImports.map(serviceImportHtml).join('\n') || '<p>No ServiceImport matches.</p>'}
${pagerHtml(page)}
<h2>Newest Events</h2>
${eventsHtml(page.events)}
<h2>Configuration in force <small>${escapeHtml(page.configVersion)}</small></h2>
<table class="config"><tbody>
${page.config.map((row) => `<tr><th scope="row">${escapeHtml(row.key)}</th><td>${escapeHtml(row.value)}</td></tr>`).join('\n')}
</tbody></table>`;
}

function filterHtml(query: StatusQuery): string {
  const field = (name: keyof StatusQuery, label: string, placeholder: string): string =>
    `<label>${label} <input type="search" name="${name}" value="${escapeHtml(query[name] ?? '')}" placeholder="${placeholder}"></label>`;
  return `<form class="filter" method="get" action="/status">
${field('namespace', 'namespace', 'any')} ${field('serviceImport', 'ServiceImport', 'any')} ${field('address', 'address', 'any')} ${field('node', 'node', 'any')}
<label><input type="checkbox" name="problems" value="1"${query.problems ? ' checked' : ''}> problems only</label>
<button type="submit">Filter</button> <a href="/status">clear</a>
</form>`;
}

/** The whole page. */
export function renderPage(page: StatusPage, source: PageSource): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>eps-probe-plugin status</title><link rel="stylesheet" href="/status/style.css"></head>
<body><header><h1>eps-probe-plugin status</h1><span id="updates">static page: reload for news</span></header>
${filterHtml(page.query)}
<main id="live">
${renderLive(page, source)}
</main>
<script src="/status/app.js" defer></script>
</body></html>
`;
}
