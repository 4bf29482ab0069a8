// Kubernetes Events where a user looks (`kubectl describe`, `kubectl get events`). A repeat of an
// identical event raises the `count` and `lastTimestamp` of the Event already written, as the
// kubelet's and controllers' own recorders do, so `kubectl describe` shows how often it happened.
// Writes of one Event never overlap: repeats that arrive while one is in flight are folded into the
// next write, so a burst of repeats costs a handful of requests, not one each.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { statusCodeOf } from './resources.js';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  /** Empty for cluster-scoped objects. */
  namespace?: string;
  uid?: string;
}

export interface EventRecorder {
  normal(target: EventTarget, reason: string, message: string): void;
  warning(target: EventTarget, reason: string, message: string): void;
}

export interface EventRecorderOptions {
  /** `source.component` / `reportingController`. */
  component: string;
  /** `source.host` / `reportingInstance` (node or pod name). */
  instance: string;
  /** How many distinct events are remembered for counting repeats (least recently seen forgotten first). */
  cacheSize?: number;
}

const MAX_MESSAGE = 1024;
const DEFAULT_CACHE_SIZE = 4096;

/** What the recorder knows of one distinct event (same object, type, reason and message). */
interface SeenEvent {
  body: k8s.CoreV1Event;
  /** Name of the Event object once created. */
  name?: string;
  /** Occurrences so far; the Event in the API catches up with the next write. */
  count: number;
  writing: boolean;
  /** A repeat arrived during a write: write again when it ends. */
  dirty: boolean;
}

export function createEventRecorder(kc: k8s.KubeConfig, options: EventRecorderOptions, logger: Logger): EventRecorder {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  const seen = new Map<string, SeenEvent>();

  async function write(key: string, event: SeenEvent): Promise<void> {
    event.writing = true;
    do {
      event.dirty = false;
      const count = event.count;
      const lastTimestamp = event.body.lastTimestamp!;
      const namespace = event.body.metadata!.namespace!;
      try {
        if (event.name !== undefined) {
          try {
            await core.patchNamespacedEvent(
              { namespace, name: event.name, body: { count, lastTimestamp } },
              k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
            );
            continue;
          } catch (err) {
            // Events expire (an hour by default); a repeat after that starts a new Event object.
            if (statusCodeOf(err) !== 404) throw err;
          }
        }
        const created = await core.createNamespacedEvent({ namespace, body: { ...event.body, count, lastTimestamp } });
        event.name = created.metadata?.name;
      } catch (err) {
        // An event is best effort: losing one must never disturb the work it describes.
        logger.warn({ err, reason: event.body.reason, object: key }, 'could not record event');
      }
    } while (event.dirty);
    event.writing = false;
  }

  function record(type: 'Normal' | 'Warning', target: EventTarget, reason: string, message: string): void {
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const key = `${type}/${target.kind}/${target.namespace ?? ''}/${target.name}/${target.uid ?? ''}/${reason}/${text}`;
    const now = new Date();
    let event = seen.get(key);
    if (event) {
      seen.delete(key); // re-inserted below: the map's order is least recently seen first
      event.count++;
      event.body.lastTimestamp = now;
    } else {
      event = { body: eventBody(type, target, reason, text, now, options), count: 1, writing: false, dirty: false };
    }
    seen.set(key, event);
    for (const [oldest, entry] of seen) {
      if (seen.size <= cacheSize) break;
      if (!entry.writing) seen.delete(oldest);
      else break;
    }
    if (event.writing) event.dirty = true;
    else void write(key, event);
  }

  return {
    normal: (target, reason, message) => record('Normal', target, reason, message),
    warning: (target, reason, message) => record('Warning', target, reason, message),
  };
}

function eventBody(type: string, target: EventTarget, reason: string, message: string, time: Date, options: EventRecorderOptions): k8s.CoreV1Event {
  // The apiserver accepts events about cluster-scoped objects only in `default`.
  const namespace = target.namespace || 'default';
  return {
    metadata: { generateName: `${target.name}.`, namespace },
    involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name: target.name, namespace: target.namespace, uid: target.uid },
    type,
    reason,
    message,
    source: { component: options.component, host: options.instance },
    reportingComponent: options.component,
    reportingInstance: options.instance,
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  };
}
