// The parts of net-ping 1.2.4 (pinned) that src/probe/icmp.ts relies on, including two internals it overrides.
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
    id: number;
    target: string;
    /** ICMP type of the message matched to this request. */
    type?: number;
  }

  export type PingCallback = (error: Error | null, target: string, sent?: Date, received?: Date) => void;

  export class Session extends EventEmitter {
    constructor(options?: SessionOptions);
    /** Read by pingHost for each new request. */
    timeout: number;
    /** Requests waiting for a reply. */
    reqsPending: number;
    pingHost(target: string, callback: PingCallback): this;
    close(): this;
    /** Finds the pending request a received packet answers (by identifier and sequence only). */
    protected fromBuffer(buffer: Buffer): PendingRequest | null | undefined;
    protected onSocketMessage(buffer: Buffer, source: string): void;
  }

  export const NetworkProtocol: { IPv4: 1; IPv6: 2 };
  export class RequestTimedOutError extends Error {}
}
