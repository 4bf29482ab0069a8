export { canonicalAddress } from '../contract/addresses.js';
export { parseAllowList, type AllowList, type AllowDecision } from './address.js';
export {
  ProbeEngine,
  NETWORK_PROBERS,
  type IcmpProbe,
  type Probers,
  type ProbeEngineDeps,
} from './engine.js';
export type { Reachability } from './hysteresis.js';
export type { ReachabilityChange } from './results.js';
export type { TargetSetDiff } from './target-set.js';
export type { TargetStatus } from './target-state.js';
export { IcmpPinger, IcmpUnavailableError } from './icmp.js';
export { DEFAULT_PROBE_OPTIONS, resolveProbeOptions, type ProbeEngineOptions, type ProbeMode } from './options.js';
export type { ProbeOutcome, ProbeResult, Protocol } from './outcome.js';
export { ProbeCanceller, tcpConnect, tcpConnectAnyPort } from './tcp.js';
export type { Target } from '../contract/target.js';
