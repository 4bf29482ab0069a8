import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/config.js';
import { escapeHtml, queryString, renderLive, renderPage, type PageSource } from '../../src/status/html.js';
import { buildStatus, queryStatus, type StatusPage } from '../../src/status/model.js';
import { formatMatrix, formatNodes, formatTable, MAX_NODE_COLUMNS } from '../../src/status/table.js';
import { observeReports } from '../../src/status/observe.js';
import { NOW, makeReport } from './fixtures.js';

const SOURCE: PageSource = { identity: 'controller-0', leading: true, decisions: 'leader' };
const HOSTILE = `<img src=x onerror="alert('x')">&`;

function page(nodes: string[] = ['node-a'], unreachable: string[] = ['10.0.0.2']): StatusPage {
  const index = buildStatus({
    now: NOW,
    config: { ...DEFAULT_CONFIG, allowCidrs: ['10.0.0.0/8'], namespaces: { include: [HOSTILE], exclude: [] } },
    configVersion: HOSTILE,
    nodes: nodes.map((name) => ({ name, state: 'live', probeReplicas: 0, unreachable: new Set(unreachable), rttMs: new Map([['10.0.0.1', 0.5]]) })),
    serviceImports: [{ namespace: HOSTILE, name: HOSTILE, addresses: ['10.0.0.1', '10.0.0.2'], published: new Set(), pruned: new Set() }],
    verdicts: new Map(),
    events: [{ time: NOW.toISOString(), type: 'Warning', reason: HOSTILE, message: HOSTILE, kind: 'ServiceImport', namespace: HOSTILE, name: HOSTILE, count: 1 }],
  });
  return queryStatus(index, { namespace: HOSTILE });
}

describe('status page HTML', () => {
  it('escapes every character that could open markup or leave an attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('never lets a value from the cluster become markup', () => {
    const html = renderPage(page(), SOURCE);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;');
    // The only script is the page's own.
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain('<script src="/status/app.js" defer></script>');
  });

  it('has a GET filter form that keeps the query, and the live part', () => {
    const html = renderPage(page(), SOURCE);
    expect(html).toContain('<form class="filter" method="get" action="/status">');
    expect(html).toContain(`name="namespace" value="${escapeHtml(HOSTILE.toLowerCase())}"`);
    expect(html).toContain('<main id="live">');
  });

  it('marks each cell and decision for people and for tests', () => {
    const html = renderLive(page(), SOURCE);
    expect(html).toContain('<tr data-address="10.0.0.2" data-decision="kept-by-quorum">');
    expect(html).toContain('data-node="node-a" data-state="unreachable"');
    expect(html).toContain('✓ reachable <span class="rtt">0.50 ms</span>');
  });

  it('builds page links from the query, leaving defaults out', () => {
    expect(queryString({ namespace: 'a b', problems: true, page: 1 }, { page: 2 })).toBe('?namespace=a+b&problems=1&page=2');
    expect(queryString({})).toBe('');
  });
});

describe('status tables for a terminal', () => {
  it('aligns columns kubectl-style, without colour codes unless asked', () => {
    const text = formatTable(['NAME', 'STATE'], [['a', { text: 'live', colour: 'green' }], ['longer-name', 'x']], false);
    expect(text).toBe('NAME          STATE\na             live\nlonger-name   x');
    expect(formatTable(['NAME'], [[{ text: 'a', colour: 'red' }]], true)).toBe('NAME\n\x1b[31ma\x1b[0m');
  });

  it('prints a column per node with the cut address UNREACHABLE', () => {
    const { serviceImports, nodes } = page(['node-a', 'node-b']);
    const text = formatMatrix(serviceImports, nodes.map((n) => n.name), false);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^NAMESPACE +SERVICEIMPORT +ADDRESS +NODE-A +NODE-B +DECISION +WHY$/);
    expect(lines[2]).toMatch(/ 10\.0\.0\.2 +UNREACHABLE +UNREACHABLE +kept-by-quorum +2 of 2/);
    expect(formatNodes(nodes, false).split('\n')[0]).toMatch(/^NODE +STATE +CONFIG +HEARTBEAT +TARGETS +UNREACHABLE +PROBES\/S +LATE\(MS\) +REASON$/);
  });

  it("shows a node's probe rate and lateness from its report, in the table and on the page", () => {
    const [node] = observeReports(
      [{ metadata: { name: 'a' }, spec: makeReport('a', [], { probeStats: { probesPerSecond: 12.5, meanLatenessMs: 3.2 } }) }],
      { now: NOW, configVersion: '1', staleAfterMs: 90_000 },
      new Map(),
    );
    expect(formatNodes([{ ...node!, unreachable: 0 }], false).split('\n')[1]).toMatch(/ 12\.5 +3\.2$/);
    const index = buildStatus({ now: NOW, config: DEFAULT_CONFIG, configVersion: '1', nodes: [node!], serviceImports: [], verdicts: new Map(), events: [] });
    expect(renderPage(queryStatus(index, {}), SOURCE)).toMatch(/<td>12\.5<\/td><td>3\.2<\/td>/);
  });

  it('lists who sees an address unreachable instead of a column per node when there are many nodes', () => {
    const names = Array.from({ length: MAX_NODE_COLUMNS + 1 }, (_, i) => `n${i}`);
    const { serviceImports } = page(names, []);
    const text = formatMatrix(serviceImports, names, false);
    expect(text.split('\n')[0]).toMatch(/ADDRESS +UNREACHABLE FROM +DECISION/);
  });
});
