// The self-isolation guard, decided by the controller over every live view (docs/adr/0002). One node
// seeing most of its targets down is likelier a node with a broken uplink than an outage, unless its
// peers see the same: then the targets are down. So a node's own alarm removes its votes only when
// most of its peers disagree, and a small target set seen down by every node is an outage.
import type { ProbeReportSpec } from '../contract/probe-report.js';
import { isAlarmed } from './view.js';

/**
 * A node without live peers has nothing to compare with: its alarm counts only over at least this
 * many judged targets, since a few targets of one service going down is likelier than an isolated
 * node among so few; below it, the ejection cap alone bounds what the node can prune.
 */
export const LONE_NODE_MIN_JUDGED = 10;

/** Targets a report judged; older reports without the count judged every target they probed. */
export function judgedCount(report: ProbeReportSpec): number {
  return report.targetsJudged ?? report.targetsProbed;
}

/**
 * The nodes whose votes the guard ignores, each with the reason. `reports`: the live reports on the
 * configuration in force, one per node; `share`: selfIsolationShare (1 disables the guard). A node is
 * isolated when it is alarmed (isAlarmed: more than `share` of its judged targets unreachable) and at
 * most half of its peers (the other nodes that judged anything) are alarmed too. Without peers it is
 * isolated when alarmed over at least LONE_NODE_MIN_JUDGED judged targets. Linear in the reports.
 */
export function isolatedNodes(reports: readonly ProbeReportSpec[], share: number): Map<string, string> {
  const judging = reports.filter((report) => judgedCount(report) > 0);
  const alarmed = new Set(judging.filter((report) => isAlarmed(report.unreachableCount, judgedCount(report), share)).map((r) => r.nodeName));
  const isolated = new Map<string, string>();
  const percent = `${Math.round(share * 100)}%`;
  for (const report of judging) {
    if (!alarmed.has(report.nodeName)) continue;
    const seen = `sees ${report.unreachableCount} of its ${judgedCount(report)} judged targets unreachable (more than ${percent})`;
    const peers = judging.length - 1;
    const alarmedPeers = alarmed.size - 1;
    if (peers === 0) {
      if (judgedCount(report) >= LONE_NODE_MIN_JUDGED) isolated.set(report.nodeName, `${seen} and no other node reports to compare with`);
    } else if (alarmedPeers * 2 <= peers) {
      isolated.set(report.nodeName, `${seen} while only ${alarmedPeers} of ${peers} other nodes see more than ${percent} of theirs unreachable`);
    }
  }
  return isolated;
}
