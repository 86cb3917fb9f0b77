import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import type { Entry } from '@libos/recipe';
import { usageError } from './errors.js';
import { hex } from './report.js';

/** One option of a command, as `node:util` parseArgs takes it, plus its help text. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's name in help: `--recipe R`. */
  value?: string;
  help: string;
}

/** The command line of one command after parsing. */
export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  debug: { type: 'boolean', help: 'print stack traces of errors' },
};

/**
 * Parse `argv` against a command's options. Unknown options, missing values and a wrong number of
 * operands are usage errors (exit 2).
 */
export function parseCommandArgs(
  argv: string[],
  options: Record<string, OptionSpec>,
  operands: { min: number; max: number; names: string },
): ParsedArgs {
  const all = { ...options, ...COMMON_OPTIONS };
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, spec] of Object.entries(all)) config[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    // parseArgs' messages are long and end with advice about '--'; keep their first sentence.
    const message = (e as Error).message.split(/\.\s/)[0]?.replace(/\.$/, '') ?? String(e);
    throw usageError(message.replace(/^Unknown option/, 'unknown option').replace(/^Option/, 'option'));
  }
  if (parsed.values.help === true) return parsed;
  if (parsed.positionals.length < operands.min) throw usageError(`missing operand: expected ${operands.names}`);
  if (parsed.positionals.length > operands.max) {
    throw usageError(`unexpected operand '${parsed.positionals[operands.max] ?? ''}': expected ${operands.names}`);
  }
  return parsed;
}

/** A string option's value, or undefined. */
export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A boolean option's value. */
export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** A string option that must be given. */
export function requiredOption(args: ParsedArgs, name: string, what: string): string {
  const value = stringOption(args, name);
  if (value === undefined || value === '') throw usageError(`--${name} ${what} is required`);
  return value;
}

/** The forms `--entry` accepts, for messages and help. */
export const ENTRY_FORMS = 'passthrough, trace, handler:<file>, symbol:<name>, address:<hex>';

/**
 * Parse `--entry`: `passthrough`, `trace`, `handler:<file>` (relative to the current folder),
 * `symbol:<name>` or `address:<hex>`.
 */
export function parseEntry(text: string, cwd: string = process.cwd()): Entry {
  if (text === 'passthrough') return { kind: 'passthrough' };
  if (text === 'trace') return { kind: 'trace' };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const value = colon < 0 ? '' : text.slice(colon + 1);
  switch (kind) {
    case 'handler':
      if (value === '') break;
      return { kind: 'handler', source: resolve(cwd, value) };
    case 'symbol':
      if (!/^[A-Za-z_.$][A-Za-z0-9_.$@]*$/.test(value)) break;
      return { kind: 'symbol', name: value };
    case 'address': {
      const hex = value.replace(/^0x/i, '');
      if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) break;
      return { kind: 'address', va: BigInt(`0x${hex}`) };
    }
    default:
      throw usageError(`--entry '${text}': unknown entry kind; expected one of ${ENTRY_FORMS}`);
  }
  throw usageError(`--entry '${text}': malformed ${kind} entry; expected one of ${ENTRY_FORMS}`);
}

/** `--entry` as it would be written, for summaries. */
export function formatEntry(entry: Entry): string {
  switch (entry.kind) {
    case 'passthrough': case 'trace': return entry.kind;
    case 'handler': return `handler:${entry.source}`;
    case 'symbol': return `symbol:${entry.name}`;
    case 'address': return `address:${hex(entry.va)}`;
    case 'slot': return `slot:${entry.segment}:${entry.offset}`;
    case 'pointer': return `pointer:${entry.symbol}`;
  }
}
