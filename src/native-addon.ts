import { createRequire } from 'node:module';

/**
 * A native addon this package builds (binding.gyp → build/Release/<name>.node). Resolved from this
 * file, which sits one folder below the package root as src/native-addon.ts, as dist/native-addon.js
 * and inside the bundle dist/eps-probe-plugin.js alike.
 */
export function loadNativeAddon<T>(name: string): T {
  return createRequire(import.meta.url)(`../build/Release/${name}.node`) as T;
}
