// The parts of net-ping 1.2.4 (pinned) that src/probe/icmp.ts relies on, including the internals it
// overrides (packets, reply matching, sending, timeouts) and the raw-socket 1.8.1 socket under a session.
declare module 'net-ping' {
  import { EventEmitter } from 'node:events';

  export interface SessionOptions {
    networkProtocol?: number;
    retries?: number;
    timeout?: number;
    /** ICMP identifier shared by every request of the session; net-ping uses `pid % 65535` when falsy. */
    sessionId?: number;
  }

  /** One outstanding echo request. */
  export interface PendingRequest {
    /** Its sequence number, the key in `reqs`. */
    id: number;
    target: string;
    /** The echo request packet (toBuffer's). */
    buffer: Buffer;
    /** Milliseconds to wait for the reply. */
    timeout: number;
    /** Sends left after a timeout before the request fails. */
    retries: number;
    /** Called as a method of the request. */
    callback: PingCallback;
  }

  /** raw-socket's native socket: sendto/recvfrom on a non-blocking raw socket, throwing strerror texts. */
  export interface RawSocketWrap {
    /** Sends at once; calls `sent` synchronously with the byte count. */
    send(buffer: Buffer, offset: number, length: number, address: string, sent: (bytes: number) => void): void;
    /** Reads one datagram into `buffer` at once; calls `received` synchronously. */
    recv(buffer: Buffer, received: (buffer: Buffer, bytes: number, source: string) => void): void;
  }

  /** raw-socket's JS socket: `send` queues until the socket is writable, one packet per poll event. */
  export interface RawSocket {
    wrap: RawSocketWrap;
    /** Receive buffer shared by every read. */
    buffer: Buffer;
    recvPaused: boolean;
    resumeRecv(): this;
  }

  export type PingCallback = (error: Error | null, target: string, sent?: Date, received?: Date) => void;

  export class Session extends EventEmitter {
    constructor(options?: SessionOptions);
    /** The ICMP identifier of every request of the session. */
    readonly sessionId: number;
    /** Requests waiting for a reply. */
    reqsPending: number;
    close(): this;
    /** Pending requests by sequence number. */
    protected reqs: Record<number, PendingRequest | undefined>;
    /** Opens the raw socket if it is not open. */
    protected getSocket(): RawSocket;
    /** The next free sequence number, or undefined when all 65,535 are in use. */
    protected _generateId(): number | undefined;
    /** Makes the request's packet (toBuffer), adds it to `reqs` and sends it. */
    protected reqQueue(request: PendingRequest): this;
    /** The echo request packet for a request. */
    protected toBuffer(request: PendingRequest): Buffer;
    /** Sends a request's packet; calls onSocketSend when it went out or failed. */
    protected send(request: PendingRequest): void;
    /** After sending: a send error answers the request, else its timeout starts. */
    protected onSocketSend(request: PendingRequest, error: Error | null): void;
    /** Answers a request with RequestTimedOutError (or retries). */
    protected onTimeout(request: PendingRequest): void;
    protected reqRemove(id: number): PendingRequest | undefined;
    /**
     * Settles the pending request a received packet answers (matched by identifier and sequence
     * only): an echo reply, an ICMP error message as the matching error, our own echo request ignored.
     */
    protected onSocketMessage(buffer: Buffer, source: string): void;
  }

  export const NetworkProtocol: { IPv4: 1; IPv6: 2 };
  export class RequestTimedOutError extends Error {}
}
