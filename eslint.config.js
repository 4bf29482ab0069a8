import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/ (docs/adr/0008-code-layout.md): a folder imports only from itself and from the
 * folders below it, so each may not import the folders above it (agent and controller, side by side,
 * not each other either). Every file of a folder sits directly in it, so `../<folder>/` names the
 * folder an import comes from.
 */
const MAY_NOT_IMPORT = {
  probe: ['report', 'kube', 'config', 'status', 'agent', 'controller', 'cli'],
  report: ['kube', 'config', 'status', 'agent', 'controller', 'cli'],
  kube: ['config', 'status', 'agent', 'controller', 'cli'],
  config: ['status', 'agent', 'controller', 'cli'],
  status: ['agent', 'controller', 'cli'],
  agent: ['controller', 'cli'],
  controller: ['agent', 'cli'],
};

function restrict(files, patterns) {
  return { files, rules: { 'no-restricted-imports': ['error', { patterns }] } };
}

function boundary(folder, extra = []) {
  const above = MAY_NOT_IMPORT[folder];
  const message = `src/${folder}/ may not import from ${above.map((name) => `src/${name}/`).join(', ')} (docs/adr/0008-code-layout.md).`;
  return restrict([`src/${folder}/**/*.ts`], [{ regex: `^\\.\\./(${above.join('|')})/`, message }, ...extra]);
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-floating-promises': 'error' },
  },
  restrict(['src/contract/**/*.ts'], [{ regex: '^\\.\\./', message: 'src/contract/ is the bottom layer: it imports nothing else of src/ (docs/adr/0008-code-layout.md).' }]),
  boundary('probe'),
  boundary('report', [{ regex: '^\\.\\./[^/]+$', message: 'src/report/ is pure: no logging, metrics or servers from src/*.ts (docs/adr/0008-code-layout.md).' }]),
  boundary('kube'),
  boundary('config'),
  boundary('status'),
  boundary('agent'),
  boundary('controller'),
  // src/*.ts (logging, metrics, server, startup errors) serve every folder, so they import none.
  restrict(['src/*.ts'], [{ regex: '^\\./(probe|report|kube|config|status|agent|controller|cli)/', message: 'src/*.ts serve every folder and import none of them but src/contract/ (docs/adr/0008-code-layout.md).' }]),
);
