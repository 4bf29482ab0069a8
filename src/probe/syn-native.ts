// The half-open prober's native part (native/syn.c, built to build/Release/syn.node): its calls as
// src/probe/syn.ts uses them, and what their answers mean.
import { constants } from 'node:os';
import { loadNativeAddon } from '../native-addon.js';

/** Raised when the half-open prober cannot run here: no raw sockets (CAP_NET_RAW), or its native part is not built. */
export class HalfOpenUnavailableError extends Error {
  override readonly name = 'HalfOpenUnavailableError';
}

export type NativeHandle = { readonly brand: unique symbol };

/** native/syn.c */
export interface SynNative {
  open(onReadable: () => void): [NativeHandle, number];
  queue(handle: NativeHandle, address: string, port: number): number | string;
  flush(handle: NativeHandle): (number | string)[] | null;
  receive(handle: NativeHandle, answers: Float64Array): number;
  stats(handle: NativeHandle): [number, number];
  close(handle: NativeHandle): void;
}

/** What native receive() says besides -errno of an ICMP error. */
export const ANSWER_OPEN = 1;
export const ANSWER_REFUSED = 2;

/** SYNs per sendmmsg in native/syn.c: queued SYNs go out at this count, or at the end of the event-loop turn. */
export const SEND_BATCH = 64;

/** Answers per native receive() call. */
export const RECEIVE_BATCH = 256;

export const PERMISSION_CODES = new Set(['EPERM', 'EACCES']);

export const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, value]) => [value, name]));

let loaded: SynNative | undefined;

/** build/Release/syn.node (native/syn.c). */
export function synNative(): SynNative {
  if (!loaded) {
    try {
      loaded = loadNativeAddon<SynNative>('syn');
    } catch (err) {
      throw new HalfOpenUnavailableError(`the half-open prober's native part is not built (npm ci or make build builds it): ${(err as Error).message}`, { cause: err });
    }
  }
  return loaded;
}
