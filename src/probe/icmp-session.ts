// One net-ping session of the pinger (src/probe/icmp.ts): its echo packets written in place, replies
// matched in the receive buffer, sends and reads interleaved so that a burst of sends cannot fill the
// receive buffer, and a timeout per echo.
import { performance } from 'node:perf_hooks';
import { NetworkProtocol, RequestTimedOutError, Session, type PendingRequest, type SessionOptions } from 'net-ping';
import { Expiries } from './expiries.js';
import { timeoutResult, type ProbeOutcome, type ProbeResult } from './outcome.js';

/** ICMP echo request and reply types, IPv4 and IPv6. */
const ECHO_REQUEST_V4 = 8;
const ECHO_REPLY_V4 = 0;
const ECHO_REQUEST_V6 = 128;
const ECHO_REPLY_V6 = 129;

/** net-ping's echo request: an 8-byte ICMP header and 8 zero bytes. */
const PACKET_BYTES = 16;

/** A request's packet until net-ping's reqQueue sets it. */
const NO_PACKET = Buffer.alloc(0);

/** strerror texts (raw-socket reports no errno code) that mean the network, not this host, failed. */
const NETWORK_FAILURE_MESSAGES = new Set(['Network is unreachable', 'No route to host']);

/** strerror text of EAGAIN/EWOULDBLOCK, as raw-socket throws it from a non-blocking send or receive. */
const WOULD_BLOCK = 'Resource temporarily unavailable';

/** Datagrams read per readable event at most, so a flood cannot hold the event loop. */
const MAX_READS_PER_EVENT = 1024;

const IGNORE_BYTES = (): void => undefined;

/**
 * Direct sends between two reads of waiting datagrams. Sends are synchronous, so a burst of them
 * (the engine hands its pool's slots out in one go) would otherwise leave every reply queued until
 * the burst ends, and a full receive buffer drops the rest.
 */
const SENDS_PER_READ = 32;

function resultOfPingError(error: Error): ProbeResult {
  if (error instanceof RequestTimedOutError) return 'timeout';
  if ('source' in error) return 'failure'; // an ICMP error message from the network (unreachable, TTL exceeded...)
  return NETWORK_FAILURE_MESSAGES.has(error.message) ? 'failure' : 'error';
}

/**
 * One echo in flight: net-ping's request record (its `callback` is called as a method, so that no
 * closure is made per echo), with what settles its ping.
 */
class Echo implements PendingRequest {
  buffer = NO_PACKET;
  readonly retries = 0;

  constructor(
    readonly id: number,
    readonly target: string,
    readonly timeout: number,
    private readonly started: number,
    private readonly resolve: (outcome: ProbeOutcome) => void,
  ) {}

  /** net-ping's answer for what it settles itself: an ICMP error message, a send error, a timeout, close(). */
  callback(error: Error | null): void {
    if (!error) return this.settle('success');
    const result = resultOfPingError(error);
    if (result !== 'timeout') return this.settle(result, error.message);
    const late = timeoutResult(performance.now() - this.started, this.timeout);
    this.settle(late.result, late.error);
  }

  settle(result: ProbeResult, error?: string): void {
    const durationMs = performance.now() - this.started;
    this.resolve(error === undefined ? { protocol: 'icmp', result, durationMs } : { protocol: 'icmp', result, durationMs, error });
  }
}

/**
 * A net-ping session made to cost little per echo at thousands of echoes per second, and stricter:
 *  - It accepts an echo reply only from the address that was pinged: net-ping matches replies on
 *    (identifier, sequence) alone, so a stray or late reply from another host could otherwise mark
 *    the wrong target reachable.
 *  - It sends at once (sendto on the non-blocking socket) instead of through raw-socket's queue,
 *    which waits for a writable event per packet: one event-loop turn and one epoll_wait per echo.
 *    Only when the socket would block does a packet take that queue.
 *  - It reads every datagram waiting when the socket is readable, not one per readable event.
 *  - Timeouts run from one timer per timeout length over a FIFO of requests, not one timer per echo.
 *  - Per echo it allocates no packet (one is rewritten in place and sent at once), and it matches an
 *    echo reply in the receive buffer itself; other messages (ICMP errors, our own echo requests seen
 *    when pinging this host) take net-ping's path.
 */
export class IcmpSession extends Session {
  private reading = false;
  private sendsSinceRead = 0;
  /** IPv4 raw sockets pass the IP header with each datagram, IPv6 ones do not. */
  private readonly ipv4: boolean;
  private readonly echoReplyType: number;
  /** The echo request packet, rewritten for each echo: only its sequence number and checksum change. */
  private readonly packet = Buffer.alloc(PACKET_BYTES);
  private readonly expiries = new Expiries<PendingRequest>((request) => {
    // A request answered (or flushed) before its deadline is no longer in reqs.
    if (this.reqs[request.id] === request) this.onTimeout(request);
  });
  private readonly onDatagram = (buffer: Buffer, bytes: number, source: string): void => {
    this.receive(buffer, bytes, source);
  };

  constructor(options: SessionOptions) {
    super(options);
    this.ipv4 = options.networkProtocol !== NetworkProtocol.IPv6;
    this.echoReplyType = this.ipv4 ? ECHO_REPLY_V4 : ECHO_REPLY_V6;
    this.packet[0] = this.ipv4 ? ECHO_REQUEST_V4 : ECHO_REQUEST_V6;
    this.packet.writeUInt16BE(this.sessionId, 4);
  }

  /**
   * Sends an echo request to `target`; `resolve` gets its outcome.
   * @returns false when no sequence number is free (the caller keeps sessions below that).
   */
  echo(target: string, timeoutMs: number, started: number, resolve: (outcome: ProbeOutcome) => void): boolean {
    const id = this._generateId();
    if (id === undefined) return false;
    this.reqQueue(new Echo(id, target, timeoutMs, started, resolve));
    return true;
  }

  override close(): this {
    this.expiries.clear();
    return super.close();
  }

  /** net-ping's packet for the request, written into the session's one packet: the send follows at once. */
  protected override toBuffer(request: PendingRequest): Buffer {
    const packet = this.packet;
    const sequence = request.id;
    packet[6] = sequence >>> 8;
    packet[7] = sequence & 0xff;
    // The ICMP checksum: the one's complement of the one's complement sum of the 16-bit words, of
    // which only the type, identifier and sequence are not zero.
    let sum = (packet[0]! << 8) + this.sessionId + sequence;
    sum = (sum & 0xffff) + (sum >>> 16);
    const checksum = ~((sum & 0xffff) + (sum >>> 16));
    packet[2] = (checksum >>> 8) & 0xff;
    packet[3] = checksum & 0xff;
    return packet;
  }

  protected override send(request: PendingRequest): void {
    const socket = this.getSocket();
    if (socket.recvPaused) socket.resumeRecv();
    try {
      socket.wrap.send(request.buffer, 0, request.buffer.length, request.target, IGNORE_BYTES);
    } catch (err) {
      if ((err as Error).message !== WOULD_BLOCK) return this.onSocketSend(request, err as Error);
      // Queued until the socket is writable: the packet needs a copy of its own.
      request.buffer = Buffer.from(request.buffer);
      return super.send(request);
    }
    this.onSocketSend(request, null);
    if (++this.sendsSinceRead >= SENDS_PER_READ && !this.reading) this.readWaiting();
  }

  protected override onSocketSend(request: PendingRequest, error: Error | null): void {
    if (!error) return this.expiries.add(request, request.timeout);
    this.reqRemove(request.id);
    request.callback(error, request.target);
  }

  /** A datagram raw-socket delivered on a readable event; the rest waiting are read with it. */
  protected override onSocketMessage(buffer: Buffer, source: string): void {
    this.receive(buffer, buffer.length, source);
    if (!this.reading) this.readWaiting();
  }

  /**
   * Settles the echo a datagram (the first `bytes` of `buffer`) answers. An echo reply is matched here
   * as net-ping's fromBuffer would, and only from its target; anything else goes to net-ping.
   */
  private receive(buffer: Buffer, bytes: number, source: string): void {
    // Where the ICMP message starts: after the IPv4 header, whose length is in 32-bit words.
    let icmp = 0;
    if (this.ipv4) {
      if (bytes < 20 || (buffer[0]! & 0xf0) !== 0x40) return;
      icmp = (buffer[0]! & 0x0f) * 4;
    }
    if (bytes - icmp < 8) return;
    if (buffer[icmp] !== this.echoReplyType) return void super.onSocketMessage(buffer.subarray(0, bytes), source);
    if (((buffer[icmp + 4]! << 8) | buffer[icmp + 5]!) !== this.sessionId) return;
    const request = this.reqs[(buffer[icmp + 6]! << 8) | buffer[icmp + 7]!] as Echo | undefined;
    if (request?.target !== source) return;
    this.reqRemove(request.id);
    request.settle('success');
  }

  /**
   * Reads the datagrams that arrived behind the one raw-socket delivered, until the socket would
   * block. Another receive error is the session's error, as raw-socket would report it.
   */
  private readWaiting(): void {
    this.reading = true;
    this.sendsSinceRead = 0;
    // The would-block Error ends every batch: without a stack trace it costs next to nothing.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      const socket = this.getSocket();
      for (let reads = 0; reads < MAX_READS_PER_EVENT; reads++) socket.wrap.recv(socket.buffer, this.onDatagram);
    } catch (err) {
      // As raw-socket reports a failed read: the session's error handler replaces the session.
      if ((err as Error).message !== WOULD_BLOCK) this.emit('error', err);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
      this.reading = false;
    }
  }
}
