/**
 * How results look: aligned text tables for people, JSON for programs. Nothing here decides what
 * to report, only how.
 */

/** Text styles; all identity functions when colour is off. */
export interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
}

const plain: Paint = { bold: (s) => s, dim: (s) => s, red: (s) => s, green: (s) => s, yellow: (s) => s };

const sgr = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;

/**
 * Colour only where a person reads it: on a TTY, and never when NO_COLOR is set to anything
 * (https://no-color.org).
 */
export function usePaint(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Paint {
  if (!stream.isTTY || (env.NO_COLOR !== undefined && env.NO_COLOR !== '')) return plain;
  return { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39) };
}

/** `0x401000`: addresses in lowercase hex, as objdump prints them. */
export function hex(value: bigint | number): string {
  // toString(16) of a negative number gives '-4': the sign goes before the prefix.
  return value < 0 ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`;
}

// Visible width of a string that may hold SGR sequences.
function width(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/**
 * Rows as aligned columns under a header. The last column is not padded, so long reasons do not
 * drag trailing spaces along.
 */
export function formatTable(header: string[], rows: string[][], paint: Paint = plain): string {
  // A loop, not Math.max(...rows): a spread passes one argument per row, and 200,000 sites
  // overflowed the stack.
  const widths = header.map((h, i) => {
    let w = width(h);
    for (const r of rows) w = Math.max(w, width(r[i] ?? ''));
    return w;
  });
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - width(cell)))).join('  ').trimEnd();
  return [paint.bold(line(header)), ...rows.map(line)].join('\n') + '\n';
}

/**
 * JSON for `--json`: bigints become `"0x..."` strings (addresses) and byte arrays hex strings, so
 * that every consumer reads the same text without a bigint-aware parser.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === 'bigint') return hex(v);
      if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
      return v;
    },
    2,
  ) + '\n';
}

/** `rel32 10, displace 2` from a count per name, largest first, ties by name. */
export function formatCounts(counts: Record<string, number | undefined>): string {
  const entries = Object.entries(counts).filter((e): e is [string, number] => (e[1] ?? 0) > 0);
  if (entries.length === 0) return '-';
  entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return entries.map(([name, n]) => `${name} ${n}`).join(', ');
}

/** Key/value lines with the keys padded to one width. */
export function formatFields(fields: [string, string][], paint: Paint = plain): string {
  const keyWidth = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${paint.bold(k.padEnd(keyWidth))}  ${v}`).join('\n') + '\n';
}

/** A plan's reason without the rule it starts with, for tables that show the rule already. */
export function reasonWithoutRule(reason: string, rule: string): string {
  return reason.startsWith(`${rule}; `) ? reason.slice(rule.length + 2) : reason;
}
