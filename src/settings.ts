// The kinds of value a setting takes, with their bounds, and the one check of them. config.yaml, the
// environment and options given in code all use it; each source only turns its text into a value first
// (config.yaml's "2s" into 2000 ms) and names the setting its own way in its messages.

export type SettingRule =
  /** Whole milliseconds above zero. */
  | { kind: 'duration' }
  | { kind: 'integer'; min: number; max: number }
  /** A number from 0 to 1. */
  | { kind: 'share' }
  | { kind: 'boolean' }
  | { kind: 'oneOf'; values: readonly string[] }
  /** A list of non-empty strings. */
  | { kind: 'names' };

export const DURATION: SettingRule = { kind: 'duration' };
export const SHARE: SettingRule = { kind: 'share' };
export const BOOLEAN: SettingRule = { kind: 'boolean' };
export const NAMES: SettingRule = { kind: 'names' };

/**
 * Why `value` breaks `rule`, worded to follow the setting's name ("must be …, got …"); undefined when
 * it keeps the rule. `shown` is the value as its source wrote it (config.yaml's "0s" rather than 0).
 */
export function settingProblem(rule: SettingRule, value: unknown, shown = JSON.stringify(value)): string | undefined {
  switch (rule.kind) {
    case 'duration':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) return `must be a whole number of milliseconds, got ${shown}`;
      return value > 0 ? undefined : `must be greater than zero, got ${shown}`;
    case 'integer':
      if (typeof value === 'number' && Number.isInteger(value) && value >= rule.min && value <= rule.max) return undefined;
      return `must be an integer from ${rule.min} to ${rule.max}, got ${shown}`;
    case 'share':
      return typeof value === 'number' && value >= 0 && value <= 1 ? undefined : `must be a number from 0 to 1, got ${shown}`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${shown}`;
    case 'oneOf':
      return rule.values.includes(value as string) ? undefined : `must be one of ${rule.values.join(', ')}, got ${shown}`;
    case 'names':
      if (Array.isArray(value) && value.every((item) => typeof item === 'string' && item.length > 0)) return undefined;
      return `must be a list of non-empty strings, got ${shown}`;
  }
}
