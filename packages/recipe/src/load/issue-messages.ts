import type { Document, LineCounter } from 'yaml';
import type { z } from 'zod';
import { RecipeDiagnostic, formatRecipePath, type RecipeDiagnosticCode, type RecipePath } from '../errors.js';
import { recipeSchema } from '../schema/recipe-schema.js';
import { closestMatch } from './did-you-mean.js';
import { locatePath, nodePosition } from './yaml-position.js';

type Issue = z.core.$ZodIssue;

/** Enums longer than this are not listed in full in a message (the syscall table has ~400 names). */
const MAX_LISTED_VALUES = 16;

/** What the mapper needs to know about the file a set of issues came from. */
export interface IssueSource {
  file: string;
  doc: Document;
  lineCounter: LineCounter;
  /** The document as plain data: the value zod saw. */
  value: unknown;
}

/**
 * Turn zod issues into one diagnostic per fault, each at the line and column of the YAML text
 * it is about: the offending value, an unknown key itself, or the map that lacks a required key.
 */
export function issuesToDiagnostics(issues: readonly Issue[], source: IssueSource): RecipeDiagnostic[] {
  const flat = flattenUnions(issues, [], source.value);
  // A map with an unknown key usually lacks the key that was meant: the unknown key says it all.
  const withUnknownKeys = new Set(flat.filter((issue) => issue.code === 'unrecognized_keys').map((issue) => formatRecipePath(issue.path as RecipePath)));
  const diagnostics: RecipeDiagnostic[] = [];
  for (const issue of flat) {
    if (issue.code === 'custom' && withUnknownKeys.has(formatRecipePath(issue.path as RecipePath))) continue;
    diagnostics.push(...issueToDiagnostics(issue, source));
  }
  return diagnostics;
}

/**
 * A union reports the failure of every branch. Keep only the branches of the value's own type (an
 * object cannot be a keyword); when none is, say which types would have done.
 */
function flattenUnions(issues: readonly Issue[], prefix: RecipePath, root: unknown): Issue[] {
  const flat: Issue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as RecipePath)];
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) {
      flat.push({ ...issue, path } as Issue);
      continue;
    }
    const value = valueAt(root, path);
    const branches = issue.errors.filter((branch) => !branch.some((inner) => isTypeMismatch(inner, value)));
    const chosen = branches[0];
    if (chosen) {
      // A keyword that is not one of the keywords: also say which other shapes the value may take.
      const others = issue.errors.filter((branch) => !branches.includes(branch)).map((branch) => describeBranch(branch, path));
      for (const inner of flattenUnions(chosen, path, root)) {
        const atRoot = inner.path.length === path.length && inner.code === 'invalid_value';
        flat.push(atRoot && others.length > 0 ? ({ ...inner, orElse: others } as Issue) : inner);
      }
      continue;
    }
    const expected = issue.errors.map((branch) => describeBranch(branch, path)).filter((text) => text !== '');
    // "a number or a name", but "one of a, b, or a map" once the first alternative is a list itself.
    const joiner = expected.slice(0, -1).some((text) => text.includes(',')) ? ', or ' : ' or ';
    flat.push({ code: 'invalid_type', expected: expected.join(joiner), path, message: '', input: value } as Issue);
  }
  return flat;
}

function isTypeMismatch(issue: Issue, value: unknown): boolean {
  if (issue.path.length !== 0) return false;
  if (issue.code === 'invalid_type') return true;
  if (issue.code === 'invalid_value') return issue.values.length > 0 && typeof issue.values[0] !== typeof value;
  return false;
}

function describeBranch(branch: readonly Issue[], path: RecipePath): string {
  const issue = branch.find((inner) => inner.path.length === 0);
  if (!issue) return '';
  if (issue.code === 'invalid_type') {
    const keys = issue.expected === 'object' ? allowedKeysAt(path) : [];
    return keys.length > 0 ? `a map with one of the keys ${keys.join(', ')}` : describeType(issue.expected);
  }
  if (issue.code === 'invalid_value') {
    if (isSyscallPath(path)) return 'a system call name';
    if (issue.values.length > MAX_LISTED_VALUES) return 'a string';
    return `one of ${issue.values.map((v) => String(v)).join(', ')}`;
  }
  return '';
}

function issueToDiagnostics(issue: Issue, source: IssueSource): RecipeDiagnostic[] {
  const path = issue.path as RecipePath;
  const value = valueAt(source.value, path);
  const where = formatRecipePath(path);
  const at = (code: RecipeDiagnosticCode, diagPath: RecipePath, message: string, position: 'value' | 'key' | 'parent'): RecipeDiagnostic => {
    const located = locatePath(source.doc, position === 'parent' ? diagPath.slice(0, -1) : diagPath);
    const node = position === 'key' ? (located.key ?? located.nearest) : position === 'value' ? (located.value ?? located.key ?? located.nearest) : located.nearest;
    const { line, col } = nodePosition(source.lineCounter, node);
    return new RecipeDiagnostic({ code, file: source.file, line, col, path: diagPath, message });
  };
  const prefix = where === '' ? '' : `${where}: `;

  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const allowed = allowedKeysAt(path);
        const suggestion = closestMatch(key, allowed);
        const hint = suggestion ? ` (did you mean '${suggestion}'?)` : '';
        const keyPath = [...path, key];
        return at('RECIPE_UNKNOWN_KEY', keyPath, `${formatRecipePath(keyPath)}: unknown key '${key}'${hint}; allowed keys: ${allowed.join(', ')}`, 'key');
      });
    case 'invalid_type': {
      if (value === undefined && path.length > 0) {
        const key = String(path[path.length - 1]);
        const parent = formatRecipePath(path.slice(0, -1));
        return [at('RECIPE_SCHEMA', path, `${parent === '' ? '' : `${parent}: `}missing required key '${key}'`, 'parent')];
      }
      const subject = where === '' ? 'recipe: ' : prefix;
      return [at('RECIPE_SCHEMA', path, `${subject}expected ${describeType(issue.expected)}, got ${describeValue(value)}`, 'value')];
    }
    case 'invalid_value': {
      const allowed = issue.values.map((v) => String(v));
      if (allowed.length > 0 && typeof value !== typeof issue.values[0]) {
        // A list or a map where a keyword belongs: a wrong type, not a wrong word.
        const what = isSyscallPath(path) ? 'a system call name' : allowed.length > MAX_LISTED_VALUES ? 'a string' : `one of ${allowed.join(', ')}`;
        return [at('RECIPE_SCHEMA', path, `${prefix}expected ${what}, got ${describeValue(value)}`, 'value')];
      }
      const suggestion = typeof value === 'string' ? closestMatch(value, allowed) : undefined;
      const hint = suggestion ? ` (did you mean '${suggestion}'?)` : '';
      if (isSyscallPath(path)) {
        return [at('RECIPE_UNKNOWN_SYSCALL', path, `${prefix}'${String(value)}' is not an x86-64 system call name${hint}`, 'value')];
      }
      const orElse = (issue as { orElse?: string[] }).orElse ?? [];
      const list = allowed.length > MAX_LISTED_VALUES ? '' : `; allowed values: ${[allowed.join(', '), ...orElse].join(', or ')}`;
      return [at('RECIPE_SCHEMA', path, `${prefix}'${String(value)}' is not allowed${hint}${list}`, 'value')];
    }
    case 'too_small': {
      const minimum = Number(issue.minimum);
      if (issue.origin === 'array') {
        const text = minimum <= 1 ? 'must not be empty' : `must list at least ${minimum} items`;
        return [at('RECIPE_SCHEMA', path, `${prefix}${text}`, 'value')];
      }
      if (issue.origin === 'string') return [at('RECIPE_SCHEMA', path, `${prefix}must not be empty`, 'value')];
      return [at('RECIPE_SCHEMA', path, `${prefix}must be at least ${minimum}, got ${describeValue(value)}`, 'value')];
    }
    case 'too_big':
      return [at('RECIPE_SCHEMA', path, `${prefix}must be at most ${String(issue.maximum)}, got ${describeValue(value)}`, 'value')];
    case 'invalid_format':
      // The schema words its own format messages ("must match [a-z0-9][a-z0-9-]* ...").
      return [at('RECIPE_SCHEMA', path, `${prefix}${issue.message}, got ${describeValue(value)}`, 'value')];
    default:
      return [at('RECIPE_SCHEMA', path, `${prefix}${issue.message}`, 'value')];
  }
}

function isSyscallPath(path: RecipePath): boolean {
  return path.includes('syscalls');
}

/** The value at a path of plain data, or undefined. */
export function valueAt(root: unknown, path: RecipePath): unknown {
  let value = root;
  for (const step of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[step];
  }
  return value;
}

function describeType(expected: string): string {
  switch (expected) {
    case 'object':
    case 'record':
      return 'a map';
    case 'array':
    case 'tuple':
      return 'a list';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    default:
      return expected;
  }
}

/** How a YAML value reads in a message: its kind, and the value itself where it is short. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return `the string '${value.length > 40 ? `${value.slice(0, 37)}...` : value}'`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `${value}`;
  return typeof value;
}

/** The keys the schema allows in the map at `path` (for "did you mean" and the allowed-keys list). */
export function allowedKeysAt(path: RecipePath): string[] {
  let schema: unknown = recipeSchema();
  for (const step of path) {
    schema = unwrap(schema, typeof step === 'number' ? 'array' : 'object');
    const def = defOf(schema);
    if (typeof step === 'number') schema = def?.element;
    else schema = (def?.shape as Record<string, unknown> | undefined)?.[step];
  }
  const shape = defOf(unwrap(schema, 'object'))?.shape as Record<string, unknown> | undefined;
  return shape ? Object.keys(shape) : [];
}

type Def = { type?: string; innerType?: unknown; element?: unknown; shape?: unknown; options?: unknown[]; in?: unknown };

function defOf(schema: unknown): Def | undefined {
  return (schema as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}

/** Step through optional, default, pipe and union wrappers to the object or array inside. */
function unwrap(schema: unknown, want: 'object' | 'array'): unknown {
  let current = schema;
  for (let guard = 0; guard < 16; guard++) {
    const def = defOf(current);
    if (!def) return current;
    if (def.type === want) return current;
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe') current = def.in;
    else if (def.type === 'union') current = (def.options ?? []).find((option) => defOf(unwrap(option, want))?.type === want);
    else return current;
  }
  return current;
}
