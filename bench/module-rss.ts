// What loading the code costs in memory: a fresh node per row, started with the manifest's node flags
// of the role (bench/scale-support.ts manifestContainer), imports one module (cumulative rows: each
// adds one module to the previous ones), runs a full GC and prints RSS and V8's view
// (process.memoryUsage: heap used/total, external, array buffers) plus code space; RSS split into
// anonymous memory and file pages (mostly the node binary, shared with every node process on the node). Extra node flags
// given on the command line are added to every row, to try V8 flags against the same rows.
// Run after `npx tsc -p tsconfig.json` (dist/): node --import tsx bench/module-rss.ts [extra node flags...]
import { execFileSync } from 'node:child_process';
import { manifestContainer } from './scale-support.js';

const ROWS: Array<{ role: 'agent' | 'controller'; label: string; modules: string[] }> = [
  { role: 'agent', label: 'node alone', modules: [] },
  { role: 'agent', label: '+ pino', modules: ['pino'] },
  { role: 'agent', label: '+ prom-client', modules: ['pino', 'prom-client'] },
  { role: 'agent', label: '+ net-ping', modules: ['pino', 'prom-client', 'net-ping'] },
  { role: 'agent', label: '+ @kubernetes/client-node', modules: ['pino', 'prom-client', 'net-ping', '@kubernetes/client-node'] },
  { role: 'agent', label: 'agent command (dist/cli/agent.js)', modules: ['./dist/cli/agent.js'] },
  { role: 'controller', label: 'controller command (dist/cli/controller.js)', modules: ['./dist/cli/controller.js'] },
  { role: 'agent', label: 'agent command, bundled as deployed', modules: [bundled('agent')] },
  { role: 'controller', label: 'controller command, bundled as deployed', modules: [bundled('controller')] },
];

/** dist/cli/<command>.js bundled with the options of hack/bundle.mjs (which bundles dist/cli/main.js). */
function bundled(command: 'agent' | 'controller'): string {
  const outfile = `.tmp/module-rss-${command}.js`;
  execFileSync(process.execPath, ['hack/bundle.mjs', `dist/cli/${command}.js`, outfile], { stdio: 'inherit' });
  return `./${outfile}`;
}

const extraFlags = process.argv.slice(2);
const script = (modules: string[]): string => `
import v8 from 'node:v8';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
for (const name of ${JSON.stringify(modules)}) await import(name.startsWith('./') ? pathToFileURL(name).href : name);
globalThis.gc();
const m = process.memoryUsage();
const code = v8.getHeapSpaceStatistics().filter((s) => s.space_name.includes('code')).reduce((a, s) => a + s.space_used_size, 0);
const status = readFileSync('/proc/self/status', 'utf8');
const kb = (field) => Number(status.split(field + ':')[1].trim().split(' ')[0]) * 1024;
process.stdout.write(JSON.stringify({ rss: m.rss, rssAnon: kb('RssAnon'), rssFile: kb('RssFile'), heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, code }));
`;

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1).padStart(6);
console.log(`extra node flags: ${extraFlags.join(' ') || '(none)'}`);
console.log('row                                           node flags                 RSS  (anon   file) heapUsed heapTotal external arrayBuf  code (MB)');
for (const row of ROWS) {
  const flags = [...manifestContainer(row.role).nodeFlags, ...extraFlags, '--expose-gc', '--input-type=module'];
  // Median of three runs: RSS of a fresh process varies by a few hundred kB.
  const runs = [0, 1, 2].map(() => JSON.parse(execFileSync(process.execPath, [...flags, '-e', script(row.modules)], { encoding: 'utf8' })) as Record<string, number>);
  const median = (key: string): number => runs.map((r) => r[key]!).sort((a, b) => a - b)[1]!;
  console.log(
    `${row.label.padEnd(45)} ${flags.slice(0, -2).join(' ').padEnd(22)} ${mb(median('rss'))} ${mb(median('rssAnon'))} ${mb(median('rssFile'))} ${mb(median('heapUsed'))} ${mb(median('heapTotal'))} ${mb(median('external'))} ${mb(median('arrayBuffers'))} ${mb(median('code'))}`,
  );
}
