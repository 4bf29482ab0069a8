import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Only the boundary rule: the type-aware rules need the file on disk, these sources are in memory.
const eslint = new ESLint({
  cwd: ROOT,
  overrideConfig: {
    languageOptions: { parserOptions: { project: null } },
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
});

async function restrictedImports(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return result!.messages.filter((message) => message.ruleId === 'no-restricted-imports').map((message) => message.message);
}

describe('the import boundaries of src/ (eslint.config.js)', () => {
  it.each([
    { name: 'probe importing cluster code', filePath: 'src/probe/boundary.ts', from: '../kube/resources.js', rule: /src\/probe\/ may not import from .*src\/kube\// },
    { name: 'report importing the configuration', filePath: 'src/report/boundary.ts', from: '../config/config.js', rule: /src\/report\/ may not import from .*src\/config\// },
    { name: 'report importing logging', filePath: 'src/report/boundary.ts', from: '../log.js', rule: /src\/report\/ is pure/ },
    { name: 'the contract importing the probe', filePath: 'src/contract/boundary.ts', from: '../probe/address.js', rule: /src\/contract\/ is the bottom layer/ },
    { name: 'the agent importing the controller', filePath: 'src/agent/boundary.ts', from: '../controller/controller.js', rule: /src\/agent\/ may not import from .*src\/controller\// },
    { name: 'the controller importing the CLI', filePath: 'src/controller/boundary.ts', from: '../cli/bootstrap.js', rule: /src\/controller\/ may not import from .*src\/cli\// },
    { name: 'src/*.ts importing a folder', filePath: 'src/boundary.ts', from: './report/aggregate.js', rule: /src\/\*\.ts serve every folder/ },
  ])('refuses $name', async ({ filePath, from, rule }) => {
    const messages = await restrictedImports(filePath, `import { x } from '${from}';\nexport const y = x;\n`);
    expect(messages).toEqual([expect.stringMatching(rule)]);
  });

  it.each([
    { name: 'probe importing the contract', filePath: 'src/probe/boundary.ts', from: '../contract/target.js' },
    { name: 'report importing the probe', filePath: 'src/report/boundary.ts', from: '../probe/hysteresis.js' },
    { name: 'the controller importing the status model', filePath: 'src/controller/boundary.ts', from: '../status/events.js' },
    { name: 'the CLI importing the controller', filePath: 'src/cli/boundary.ts', from: '../controller/controller.js' },
  ])('allows $name', async ({ filePath, from }) => {
    expect(await restrictedImports(filePath, `import { x } from '${from}';\nexport const y = x;\n`)).toEqual([]);
  });
});
