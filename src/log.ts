import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Minimum level written; `silent` writes nothing. */
  level?: LevelWithSilent;
  /** Fields bound to every line (e.g. `component`, `node`). */
  bindings?: Record<string, unknown>;
  /** Where lines go; standard output when unset. Tests pass a stream to read the JSON lines. */
  destination?: NodeJS.WritableStream;
}

/** The one logger factory: JSON lines, errors under `err`, timestamps in ISO form. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (options.destination as pino.DestinationStream | undefined) ?? pino.destination(1),
  );
  return options.bindings ? base.child(options.bindings) : base;
}
