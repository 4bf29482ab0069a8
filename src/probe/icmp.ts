import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import { NetworkProtocol, type SessionOptions } from 'net-ping';
import type { Logger } from '../log.js';
import { IcmpSession } from './icmp-session.js';
import type { ProbeOutcome } from './outcome.js';

/** Raised when raw ICMP sockets cannot be opened (no CAP_NET_RAW): the engine falls back or refuses to start. */
export class IcmpUnavailableError extends Error {
  override readonly name = 'IcmpUnavailableError';
}

/**
 * Requests in flight per session. net-ping numbers requests with a 16-bit sequence and reuses a
 * number once it is free; keeping half the space free means a number is reused only after 32k newer
 * requests, long after any late reply to its previous use.
 */
const MAX_PENDING_PER_SESSION = 32_768;

/** strerror texts (raw-socket reports no errno code) of a refused raw socket. */
const PERMISSION_MESSAGES = new Set(['Operation not permitted', 'Permission denied']);

interface PingSession {
  session: IcmpSession;
  /** False once the raw socket failed or closed; the session is then replaced. */
  open: boolean;
}

function errorOutcome(started: number, error: string): ProbeOutcome {
  return { protocol: 'icmp', result: 'error', durationMs: performance.now() - started, error };
}

/**
 * Pingers not yet closed. raw-socket's poll handle does not keep its JS socket alive, and until a
 * send completes nothing else does: a caller awaiting only its pings (the `probe` command) left the
 * whole pinger, its pending pings and the awaiting code unreachable, so the garbage collector closed
 * the socket and the process exited with the pings unsettled. Holding open pingers here prevents it.
 */
const openPingers = new Set<IcmpPinger>();

/** ICMP echo over raw sockets, IPv4 and IPv6, with as many net-ping sessions as the number of pings in flight needs. */
export class IcmpPinger {
  private readonly sessions = new Map<4 | 6, PingSession[]>([
    [4, []],
    [6, []],
  ]);
  /** ICMP identifiers in use by our sessions; random rather than net-ping's pid-based one (pid 1 in every container). */
  private readonly sessionIds = new Set<number>();
  private closed = false;

  /**
   * Opens the first IPv4 session now, so that missing raw-socket permission shows at start.
   * @throws IcmpUnavailableError when raw sockets are not permitted.
   */
  constructor(private readonly logger: Logger) {
    this.openSession(4);
    openPingers.add(this);
  }

  ping(address: string, timeoutMs: number): Promise<ProbeOutcome> {
    const started = performance.now();
    const family = isIP(address);
    // raw-socket's own check, which the direct send in IcmpSession skips.
    if (family === 0) return Promise.resolve(errorOutcome(started, `not an IP address: ${address}`));
    let session: IcmpSession;
    try {
      session = this.sessionFor(family === 6 ? 6 : 4);
    } catch (err) {
      return Promise.resolve(errorOutcome(started, (err as Error).message));
    }
    return new Promise((resolve) => {
      if (!session.echo(address, timeoutMs, started, resolve)) resolve(errorOutcome(started, 'Too many requests outstanding'));
    });
  }

  /** Closes every session; pings in flight complete at once with an error. */
  close(): void {
    this.closed = true;
    openPingers.delete(this);
    for (const list of this.sessions.values()) {
      for (const entry of list.splice(0)) {
        entry.open = false;
        entry.session.close();
      }
    }
  }

  private sessionFor(family: 4 | 6): IcmpSession {
    if (this.closed) throw new Error('ICMP pinger closed');
    const list = this.sessions.get(family)!;
    let best: PingSession | undefined;
    for (const entry of list) {
      if (entry.open && (!best || entry.session.reqsPending < best.session.reqsPending)) best = entry;
    }
    if (best && best.session.reqsPending < MAX_PENDING_PER_SESSION) return best.session;
    return this.openSession(family).session;
  }

  private openSession(family: 4 | 6): PingSession {
    let sessionId: number;
    do sessionId = randomInt(1, 65_535);
    while (this.sessionIds.has(sessionId));
    const options: SessionOptions = {
      networkProtocol: family === 6 ? NetworkProtocol.IPv6 : NetworkProtocol.IPv4,
      retries: 0,
      sessionId,
    };
    let session: IcmpSession;
    try {
      session = new IcmpSession(options);
    } catch (err) {
      const message = (err as Error).message;
      if (PERMISSION_MESSAGES.has(message)) {
        throw new IcmpUnavailableError(`raw ICMP sockets not permitted (${message}); CAP_NET_RAW is needed`, { cause: err });
      }
      throw new Error(`cannot open an IPv${family} ICMP socket: ${message}`, { cause: err });
    }
    this.sessionIds.add(sessionId);
    const entry: PingSession = { session, open: true };
    const retire = (): void => {
      if (!entry.open) return;
      entry.open = false;
      this.sessionIds.delete(sessionId);
      const list = this.sessions.get(family)!;
      list.splice(list.indexOf(entry), 1);
    };
    session.on('error', (err: Error) => {
      this.logger.warn({ err, family: `IPv${family}` }, 'ICMP socket failed; opening a new one for the next ping');
      retire();
      // net-ping does not answer its pending requests on a socket error: closing flushes them (as
      // local errors), or their pings would never settle and hold their pool slots forever.
      session.close();
    });
    session.on('close', retire);
    this.sessions.get(family)!.push(entry);
    return entry;
  }
}
