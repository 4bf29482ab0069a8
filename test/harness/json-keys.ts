// JSON.parse keeps the last of two equal keys without a word, so duplicate keys need a scan of their own.

/** The end index of the JSON string starting at `start` (its closing quote). */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  throw new SyntaxError(`unterminated string at ${start}`);
}

/**
 * The keys that occur more than once in one object of the JSON `text`, as `path.key` (`component`,
 * `err.code`, `list[1].name`), in order of their second occurrence.
 * @throws SyntaxError when `text` is not JSON.
 */
export function duplicateKeys(text: string): string[] {
  JSON.parse(text); // valid JSON, so the scan below only has to tell keys from values
  const duplicates: string[] = [];
  /** Open containers: an object's keys so far, or an array's index; and their path. */
  const open: Array<{ path: string; keys?: Set<string>; index: number; key?: string }> = [];
  let expectKey = false;
  const childPath = (): string => {
    const parent = open.at(-1);
    if (!parent) return '';
    if (parent.keys) return parent.path ? `${parent.path}.${parent.key}` : parent.key!;
    return `${parent.path}[${parent.index}]`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = endOfString(text, i);
      const container = open.at(-1);
      if (expectKey && container?.keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (container.keys.has(key)) duplicates.push(container.path ? `${container.path}.${key}` : key);
        container.keys.add(key);
        container.key = key;
        expectKey = false;
      }
      i = end;
    } else if (c === '{') {
      open.push({ path: childPath(), keys: new Set(), index: 0 });
      expectKey = true;
    } else if (c === '[') {
      open.push({ path: childPath(), index: 0 });
    } else if (c === '}' || c === ']') {
      open.pop();
    } else if (c === ',') {
      const container = open.at(-1);
      if (container?.keys) expectKey = true;
      else if (container) container.index++;
    }
  }
  return duplicates;
}
