import { describe, expect, it } from 'vitest';
import { LONE_NODE_MIN_JUDGED, isolatedNodes } from '../../src/report/isolation.js';
import { makeReport } from './fixtures.js';

/** A report of `node` that judged `judged` targets and saw `down` of them unreachable. */
const view = (node: string, down: number, judged: number) =>
  makeReport(node, Array.from({ length: down }, (_, i) => `10.0.0.${i + 1}`), { targetsProbed: judged, targetsJudged: judged });

describe('isolatedNodes', () => {
  it.each([
    { name: 'nobody when every node sees the same small service 2 of 3 down', views: [view('a', 2, 3), view('b', 2, 3), view('c', 2, 3)], isolated: [] },
    { name: 'the one node that sees everything down while its peers see nothing', views: [view('a', 3, 3), view('b', 0, 3), view('c', 0, 3)], isolated: ['a'] },
    { name: 'both alarmed nodes when the third, their only other peer, disagrees', views: [view('a', 3, 3), view('b', 3, 3), view('c', 0, 3)], isolated: ['a', 'b'] },
    { name: 'nobody when a majority of the peers sees the same', views: [view('a', 4, 4), view('b', 3, 4), view('c', 3, 4), view('d', 0, 4)], isolated: [] },
    { name: 'nobody when both of two nodes see the same', views: [view('a', 3, 3), view('b', 3, 3)], isolated: [] },
    { name: 'the alarmed one of two nodes', views: [view('a', 3, 3), view('b', 0, 3)], isolated: ['a'] },
    { name: 'nobody at or below the share', views: [view('a', 2, 4), view('b', 0, 4)], isolated: [] },
    { name: 'nobody with a single judged target', views: [view('a', 1, 1), view('b', 0, 3)], isolated: [] },
    { name: 'a node whose only peers judged nothing, by the lone-node rule', views: [view('a', 3, 3), view('b', 0, 0)], isolated: [] },
  ])('isolates $name', ({ views, isolated }) => {
    expect([...isolatedNodes(views, 0.5).keys()].sort()).toEqual(isolated);
  });

  it.each([
    { name: 'a lone node with a small target set', down: LONE_NODE_MIN_JUDGED - 2, judged: LONE_NODE_MIN_JUDGED - 1, isolated: false },
    { name: 'a lone node alarmed over enough targets', down: LONE_NODE_MIN_JUDGED, judged: LONE_NODE_MIN_JUDGED, isolated: true },
    { name: 'a lone node below the share', down: 4, judged: 2 * LONE_NODE_MIN_JUDGED, isolated: false },
  ])('decides $name by its own alarm', ({ down, judged, isolated }) => {
    expect(isolatedNodes([view('a', down, judged)], 0.5).has('a')).toBe(isolated);
  });

  it('never isolates with share 1', () => {
    expect(isolatedNodes([view('a', 20, 20), view('b', 0, 20)], 1).size).toBe(0);
  });

  it('says why, with the figures', () => {
    expect(isolatedNodes([view('a', 3, 3), view('b', 0, 3), view('c', 0, 3)], 0.5).get('a')).toBe(
      'sees 3 of its 3 judged targets unreachable (more than 50%) while only 0 of 2 other nodes see more than 50% of theirs unreachable',
    );
  });

  it('takes an older report without targetsJudged as having judged every target', () => {
    const old = makeReport('a', ['10.0.0.1', '10.0.0.2', '10.0.0.3'], { targetsProbed: 3, targetsJudged: undefined });
    expect(isolatedNodes([old, view('b', 0, 3)], 0.5).has('a')).toBe(true);
  });
});
