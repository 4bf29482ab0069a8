import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { duplicateKeys } from '../harness/json-keys.js';

describe('duplicateKeys', () => {
  it.each([
    { name: 'a flat object with distinct keys', text: '{"a":1,"b":"a"}', expected: [] },
    { name: 'a repeated top-level key', text: '{"component":"agent","node":"n1","component":"probe"}', expected: ['component'] },
    { name: 'a repeated key in a nested object', text: '{"err":{"code":1,"code":2},"code":3}', expected: ['err.code'] },
    { name: 'equal keys in sibling objects', text: '{"a":{"k":1},"b":{"k":2}}', expected: [] },
    { name: 'a repeated key inside an array element', text: '{"list":[{"n":1},{"n":1,"n":2}]}', expected: ['list[1].n'] },
    { name: 'a value that spells a key', text: '{"msg":"\\"msg\\":","msg2":"msg"}', expected: [] },
    { name: 'escaped quotes in keys', text: '{"a\\"b":1,"a\\"b":2}', expected: ['a"b'] },
  ])('$name', ({ text, expected }) => {
    expect(duplicateKeys(text)).toEqual(expected);
  });

  it('throws on text that is not JSON', () => {
    expect(() => duplicateKeys('{"a":')).toThrow(SyntaxError);
  });
});

describe('createLogger', () => {
  it('writes one key each when a part of the program logs through a child with its subsystem', () => {
    const destination = new PassThrough();
    const logger = createLogger({ bindings: { component: 'agent', node: 'n1' }, destination });
    logger.child({ subsystem: 'probe' }).warn({ address: '10.0.0.1', err: new Error('x') }, 'target refused');
    const line = String(destination.read()).trim();
    expect(duplicateKeys(line)).toEqual([]);
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', component: 'agent', node: 'n1', subsystem: 'probe', address: '10.0.0.1', msg: 'target refused' });
  });
});
