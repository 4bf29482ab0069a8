// Kubernetes Events where a user looks (`kubectl describe`, `kubectl get events`). Identical events
// for the same object are sent once per window, so a persisting condition cannot flood the API.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.js';

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
  /** Identical events are not repeated within this window. */
  dedupeWindowMs?: number;
}

const MAX_MESSAGE = 1024;

export function createEventRecorder(kc: k8s.KubeConfig, options: EventRecorderOptions, logger: Logger): EventRecorder {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const window = options.dedupeWindowMs ?? 10 * 60_000;
  const lastSent = new Map<string, number>();

  function record(type: 'Normal' | 'Warning', target: EventTarget, reason: string, message: string): void {
    const key = `${target.kind}/${target.namespace ?? ''}/${target.name}/${reason}/${message}`;
    const now = Date.now();
    if ((lastSent.get(key) ?? -Infinity) > now - window) return;
    lastSent.set(key, now);
    for (const [k, at] of lastSent) if (at <= now - window) lastSent.delete(k);
    // The apiserver accepts events about cluster-scoped objects only in `default`.
    const namespace = target.namespace || 'default';
    const time = new Date(now);
    const body: k8s.CoreV1Event = {
      metadata: { generateName: `${target.name}.`, namespace },
      involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name: target.name, namespace: target.namespace, uid: target.uid },
      type,
      reason,
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
      source: { component: options.component, host: options.instance },
      reportingComponent: options.component,
      reportingInstance: options.instance,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    core.createNamespacedEvent({ namespace, body }).catch((err: unknown) => {
      // An event is best effort: losing one must never disturb the work it describes.
      logger.warn({ err, reason, object: key }, 'could not record event');
    });
  }

  return {
    normal: (target, reason, message) => record('Normal', target, reason, message),
    warning: (target, reason, message) => record('Warning', target, reason, message),
  };
}
