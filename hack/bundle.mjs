// The program as deployed: dist/ (tsc's output) bundled into one file, dist/eps-probe-plugin.js, plus
// the probe thread's entry beside it (src/probe/tcp-threads.ts starts it from the same folder).
// Loading ~2,700 modules one by one (most of them @kubernetes/client-node's) cost each process ~30 MB
// more than one bundle (docs/benchmarks.md, "Memory"). Whitespace and syntax are minified; names are
// kept, so stack traces still name the functions. Native addons stay outside: their packages load
// them from node_modules at run time.
// Usage (after `npx tsc -p tsconfig.json`): node hack/bundle.mjs
//        node hack/bundle.mjs <entry.js> <outfile.js>   (one entry alone: bench/module-rss.ts)
import process from 'node:process';
import { build } from 'esbuild';

const options = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minifyWhitespace: true,
  minifySyntax: true,
  external: ['net-ping', 'raw-socket'],
  // CommonJS packages inside an ES module bundle call require(): give them Node's.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
};

const [entry, outfile] = process.argv.slice(2);
if (entry && outfile) {
  await build({ ...options, entryPoints: [entry], outfile });
} else {
  await build({ ...options, entryPoints: { 'eps-probe-plugin': 'dist/cli/main.js', 'tcp-thread-entry': 'dist/probe/tcp-thread-entry.js' }, outdir: 'dist' });
}
