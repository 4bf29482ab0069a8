/** How a target is probed: TCP connect to its ports, ICMP echo, or both (reachable if either answers). */
export type ProbeMode = 'tcp' | 'icmp' | 'both';

export interface ProbeEngineOptions {
  /** Time between two probes of a settled target. */
  intervalMs: number;
  /** Time a single probe may take before it counts as a timeout. */
  timeoutMs: number;
  /** Time before the next probe while a target's state is being confirmed (HAProxy `fastinter`). */
  fastIntervalMs: number;
  /** Consecutive failed probes that make a target unreachable. */
  failureThreshold: number;
  /** Consecutive successful probes that make an unreachable target reachable again. */
  successThreshold: number;
  mode: ProbeMode;
  /** Probes in flight at once, for the whole process (one pool). */
  concurrency: number;
  /** Worker threads that run the TCP connects; 0 runs them on the main thread (see docs/probe.md). */
  tcpThreads: number;
  /** Addresses outside these CIDRs are never probed. */
  allowCidrs: string[];
  /** Whether a TCP RST (connection refused) counts as reachable: it proves the path to the host works. */
  refusedIsReachable: boolean;
  /** What to do when ICMP is needed but raw sockets are not permitted: probe with TCP only, or refuse to start. */
  icmpUnavailable: 'fallback-tcp' | 'fail';
  /** Export `eps_probe_target_reachable{address}` (one series per target). */
  perTargetMetrics: boolean;
  /** How a TCP port is probed: a full connect(), or half-open (a SYN from a raw socket, answered by SYN-ACK or RST; needs NET_RAW). */
  tcpProbe: 'connect' | 'half-open';
  /** What to do when half-open probing is configured but raw sockets are not permitted: probe with connect(), or refuse to start. */
  halfOpenUnavailable: 'fallback-connect' | 'fail';
}

/** Every default in one place; docs/probe.md explains each. */
export const DEFAULT_PROBE_OPTIONS: Readonly<ProbeEngineOptions> = Object.freeze({
  intervalMs: 2000,
  timeoutMs: 1000,
  fastIntervalMs: 200,
  failureThreshold: 3,
  successThreshold: 2,
  mode: 'tcp',
  concurrency: 512,
  tcpThreads: 0,
  allowCidrs: [],
  refusedIsReachable: true,
  icmpUnavailable: 'fallback-tcp',
  perTargetMetrics: false,
  tcpProbe: 'connect',
  halfOpenUnavailable: 'fallback-connect',
});

const MODES: readonly ProbeMode[] = ['tcp', 'icmp', 'both'];

function requireInteger(name: keyof ProbeEngineOptions, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/**
 * Fills missing fields from DEFAULT_PROBE_OPTIONS (not from any previous value) and validates.
 * @throws TypeError naming the bad option.
 */
export function resolveProbeOptions(options: Partial<ProbeEngineOptions> = {}): ProbeEngineOptions {
  const resolved: ProbeEngineOptions = { ...DEFAULT_PROBE_OPTIONS, ...options };
  requireInteger('intervalMs', resolved.intervalMs, 1);
  requireInteger('timeoutMs', resolved.timeoutMs, 1);
  requireInteger('fastIntervalMs', resolved.fastIntervalMs, 0);
  requireInteger('failureThreshold', resolved.failureThreshold, 1);
  requireInteger('successThreshold', resolved.successThreshold, 1);
  requireInteger('concurrency', resolved.concurrency, 1);
  requireInteger('tcpThreads', resolved.tcpThreads, 0);
  if (!MODES.includes(resolved.mode)) {
    throw new TypeError(`mode must be one of ${MODES.join(', ')}, got ${String(resolved.mode)}`);
  }
  if (resolved.icmpUnavailable !== 'fallback-tcp' && resolved.icmpUnavailable !== 'fail') {
    throw new TypeError(`icmpUnavailable must be fallback-tcp or fail, got ${String(resolved.icmpUnavailable)}`);
  }
  if (!Array.isArray(resolved.allowCidrs)) throw new TypeError('allowCidrs must be an array of CIDR strings');
  if (typeof resolved.refusedIsReachable !== 'boolean') throw new TypeError('refusedIsReachable must be a boolean');
  if (typeof resolved.perTargetMetrics !== 'boolean') throw new TypeError('perTargetMetrics must be a boolean');
  if (resolved.tcpProbe !== 'connect' && resolved.tcpProbe !== 'half-open') {
    throw new TypeError(`tcpProbe must be connect or half-open, got ${String(resolved.tcpProbe)}`);
  }
  if (resolved.halfOpenUnavailable !== 'fallback-connect' && resolved.halfOpenUnavailable !== 'fail') {
    throw new TypeError(`halfOpenUnavailable must be fallback-connect or fail, got ${String(resolved.halfOpenUnavailable)}`);
  }
  return resolved;
}
