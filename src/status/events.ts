// Events for the status view: the controller keeps the newest ones it recorded (it watches no Events),
// the `status` command lists them. Also which addresses an Event says were restored or pruned.
import type { CoreV1Event } from '@kubernetes/client-node';
import type { EventRecorder, EventTarget } from '../kube/events.js';

export interface StatusEvent {
  /** RFC 3339: when it last happened. */
  time: string;
  type: string;
  reason: string;
  message: string;
  kind: string;
  namespace?: string;
  name: string;
  count: number;
}

/** How many Events the controller keeps for its status page. */
export const RECENT_EVENTS = 50;

/**
 * Wraps `recorder` so that every Event it records is also kept, newest first, up to `capacity`; a
 * repeat of an identical Event moves it to the front and raises its count, as the recorder does.
 */
export function keepRecentEvents(recorder: EventRecorder, now: () => Date = () => new Date(), capacity = RECENT_EVENTS): EventRecorder & { recent(): StatusEvent[] } {
  const kept = new Map<string, StatusEvent>();
  const keep = (type: string, target: EventTarget, reason: string, message: string): void => {
    const key = [type, target.kind, target.namespace ?? '', target.name, reason, message].join('\0');
    const count = (kept.get(key)?.count ?? 0) + 1;
    kept.delete(key); // re-inserted last: the map's order is oldest first
    kept.set(key, { time: now().toISOString(), type, reason, message, kind: target.kind, namespace: target.namespace, name: target.name, count });
    for (const oldest of kept.keys()) {
      if (kept.size <= capacity) break;
      kept.delete(oldest);
    }
  };
  return {
    normal(target, reason, message) {
      keep('Normal', target, reason, message);
      recorder.normal(target, reason, message);
    },
    warning(target, reason, message) {
      keep('Warning', target, reason, message);
      recorder.warning(target, reason, message);
    },
    recent: () => [...kept.values()].reverse(),
  };
}

/** An Event as listed from the API, newest time first when sorted by `time`. */
export function statusEventOf(event: CoreV1Event): StatusEvent {
  const time = event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata.creationTimestamp;
  return {
    time: time ? new Date(time).toISOString() : '',
    type: event.type ?? '',
    reason: event.reason ?? '',
    message: event.message ?? '',
    kind: event.involvedObject.kind ?? '',
    namespace: event.involvedObject.namespace,
    name: event.involvedObject.name ?? '',
    count: event.count ?? 1,
  };
}

/** The Event reasons of the controller that name the addresses they moved, after the last `: ` of the message. */
const MOVED: Record<string, 'restored' | 'disconnected'> = { EndpointsReconnected: 'restored', EndpointsDisconnected: 'disconnected' };

/**
 * Per ServiceImport key, the addresses whose newest move (in `events`) restored them, with its time:
 * they show as "restored" while they stay connected.
 */
export function restoredAddresses(events: readonly StatusEvent[]): Map<string, Map<string, string>> {
  const newest = new Map<string, { move: 'restored' | 'disconnected'; time: string }>();
  for (const event of events) {
    const move = MOVED[event.reason];
    if (event.kind !== 'ServiceImport' || !move) continue;
    const key = `${event.namespace ?? ''}/${event.name}`;
    for (const address of event.message.slice(event.message.lastIndexOf(': ') + 2).split(',')) {
      const seen = newest.get(`${key}\0${address}`);
      if (!seen || seen.time < event.time) newest.set(`${key}\0${address}`, { move, time: event.time });
    }
  }
  const result = new Map<string, Map<string, string>>();
  for (const [id, { move, time }] of newest) {
    if (move !== 'restored') continue;
    const [key, address] = id.split('\0') as [string, string];
    let addresses = result.get(key);
    if (!addresses) result.set(key, (addresses = new Map()));
    addresses.set(address, time);
  }
  return result;
}
