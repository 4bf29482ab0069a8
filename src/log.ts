import { pino, type Logger, type LevelWithSilent } from 'pino';

/** The log levels, once: of the ConfigMap's `logLevel` and of `--log-level`; `silent` writes nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const satisfies readonly LevelWithSilent[];
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Until the ConfigMap's `logLevel` applies, unless `--log-level` says otherwise. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export type { Logger };

export interface LoggerOptions {
  /** Minimum level written; `silent` writes nothing. */
  level?: LevelWithSilent;
  /**
   * Fields bound to every line: `component` (agent, controller) and the instance (`node`, `pod`).
   * A part of the program binds `subsystem` (probe, report, leader) on a child. pino writes a field
   * once per binding, so a child never binds a field its parent has: that would put the key twice
   * on one line, which strict JSON log pipelines reject.
   */
  bindings?: Record<string, unknown>;
  /** Where lines go; standard output when unset. Tests pass a stream to read the JSON lines. */
  destination?: NodeJS.WritableStream;
}

/** The one logger factory: JSON lines, errors under `err`, timestamps in ISO form. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = pino(
    {
      level: options.level ?? DEFAULT_LOG_LEVEL,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (options.destination as pino.DestinationStream | undefined) ?? pino.destination(1),
  );
  return options.bindings ? base.child(options.bindings) : base;
}

/**
 * Problems found by repeated passes over the same input (a target set, the informers' caches, a
 * condition such as addresses held back or a node isolated): each is told once while it stays and
 * again when it changes or leaves and comes back, not on every pass that still finds it (each repeat
 * would raise an Event's count). What a pass no longer finds is forgotten, so memory follows the
 * input, not everything ever seen.
 */
export class ReportedProblems<K> {
  private told = new Map<K, string>();
  private found = new Map<K, string>();

  /** Whether `key`, found in this pass, is to be reported: it was not found in the last pass, nor yet in this one. */
  isNew(key: K): boolean {
    return this.changed(key, 'found');
  }

  /** Whether `key`, found in this pass in `state`, is news: found in no other state before. An empty state is not found. */
  changed(key: K, state: string): boolean {
    if (!state) return false;
    const before = this.found.get(key) ?? this.told.get(key);
    this.found.set(key, state);
    return before !== state;
  }

  /** Ends a pass: what it did not find is forgotten. */
  endPass(): void {
    this.told = this.found;
    this.found = new Map();
  }
}
