// The status model as kubectl-style text tables for a terminal: upper-case headers, columns
// separated by three spaces, colour only when asked (stdout is a TTY). Pure.
import type { AddressRow, Cell, Decision, NodeRow, ServiceImportDetail } from './model.js';

/** Above this many nodes the matrix lists who sees an address unreachable instead of a column per node. */
export const MAX_NODE_COLUMNS = 8;

type Colour = 'red' | 'yellow' | 'green' | 'cyan' | 'grey' | undefined;
const ANSI: Record<Exclude<Colour, undefined>, string> = { red: '31', yellow: '33', green: '32', cyan: '36', grey: '90' };

/** Text and the colour it is shown in (when colour is on). */
type Field = { text: string; colour?: Colour };

const DECISION_COLOUR: Record<Decision, Colour> = {
  connected: 'green',
  restored: 'cyan',
  'kept-by-quorum': 'yellow',
  uncovered: 'yellow',
  'held-back': 'yellow',
  disconnected: 'red',
  pruned: 'red',
};

/** Aligned columns; colour codes are added after padding so that they never shift a column. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<Field | string>>, colour: boolean): string {
  const fields = rows.map((row) => row.map((field) => (typeof field === 'string' ? { text: field } : field)));
  const widths = header.map((title, i) => Math.max(title.length, ...fields.map((row) => row[i]?.text.length ?? 0)));
  const line = (row: readonly Field[]): string =>
    row
      .map((field, i) => {
        const padded = i === row.length - 1 ? field.text : field.text.padEnd(widths[i]!);
        return colour && field.colour ? `\x1b[${ANSI[field.colour]}m${padded}\x1b[0m` : padded;
      })
      .join('   ')
      .trimEnd();
  return [line(header.map((text) => ({ text }))), ...fields.map(line)].join('\n');
}

function cellField(cell: Cell): Field {
  const rtt = cell.rttMs === undefined ? '' : ` ${cell.rttMs < 10 ? cell.rttMs.toFixed(2) : Math.round(cell.rttMs)}ms`;
  switch (cell.state) {
    case 'reachable':
      return { text: `reachable${rtt}`, colour: 'green' };
    case 'unreachable':
      return { text: 'UNREACHABLE', colour: 'red' };
    case 'not-probed':
      return { text: 'not-probed', colour: 'grey' };
    case 'refused':
      return { text: 'refused', colour: 'grey' };
  }
}

export function formatNodes(nodes: readonly NodeRow[], colour: boolean): string {
  return formatTable(
    ['NODE', 'STATE', 'CONFIG', 'HEARTBEAT', 'TARGETS', 'UNREACHABLE', 'PROBES/S', 'LATE(MS)', 'REASON'],
    nodes.map((node) => [
      node.name,
      { text: node.state, colour: node.state === 'live' ? 'green' : 'yellow' },
      node.configVersion ?? '',
      node.heartbeatTime ?? '',
      String(node.targetsProbed ?? ''),
      String(node.unreachable),
      String(node.probesPerSecond ?? ''),
      String(node.meanLatenessMs ?? ''),
      node.reason ?? '',
    ]),
    colour,
  );
}

/** One row per address: a column per node (or, with many nodes, who sees it unreachable), then the decision and why. */
export function formatMatrix(serviceImports: readonly ServiceImportDetail[], nodes: readonly string[], colour: boolean): string {
  const perNode = nodes.length <= MAX_NODE_COLUMNS;
  const header = ['NAMESPACE', 'SERVICEIMPORT', 'ADDRESS', ...(perNode ? nodes.map((node) => node.toUpperCase()) : ['UNREACHABLE FROM']), 'DECISION', 'WHY'];
  const rows = serviceImports.flatMap((si) =>
    si.rows.map((row: AddressRow) => {
      const byNode = new Map(row.cells.map((cell) => [cell.node, cell]));
      const cells: Field[] = perNode
        ? nodes.map((node) => (byNode.has(node) ? cellField(byNode.get(node)!) : { text: '' }))
        : [{ text: row.cells.filter((cell) => cell.state === 'unreachable').map((cell) => cell.node).join(',') || '-' }];
      return [si.namespace, si.name, row.address, ...cells, { text: row.decision, colour: DECISION_COLOUR[row.decision] }, row.why];
    }),
  );
  return formatTable(header, rows, colour);
}
