export { canonicalAddress } from '../contract/addresses.js';
export { parseAllowList, type AllowList, type AllowDecision } from './address.js';
export {
  ProbeEngine,
  NETWORK_PROBERS,
  type IcmpProbe,
  type Probers,
  type ProbeEngineDeps,
  type ReachabilityChange,
  type TargetSetDiff,
  type TargetStatus,
} from './engine.js';
export type { Reachability } from './hysteresis.js';
export { IcmpPinger, IcmpUnavailableError } from './icmp.js';
export { HalfOpenProber, HalfOpenUnavailableError } from './syn.js';
export { DEFAULT_PROBE_OPTIONS, resolveProbeOptions, type ProbeEngineOptions, type ProbeMode } from './options.js';
export type { ProbeOutcome, ProbeResult, Protocol } from './outcome.js';
export { ProbeCanceller, tcpConnect, tcpConnectAnyPort } from './tcp.js';
export type { Target } from '../contract/target.js';
