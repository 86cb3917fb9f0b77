import { dirname, isAbsolute, join, resolve } from 'node:path';
import { readRegularFile } from '@libos/elfkit';
import type { Document, LineCounter } from 'yaml';
import { RecipeDiagnostic, formatRecipePath, type RecipeDiagnosticCode, type RecipePath } from '../errors.js';
import type { Recipe } from '../model.js';
import { yamlModule } from '../lazy-modules.js';
import { recipeSchema, type RecipeOutput } from '../schema/recipe-schema.js';
import { syscallName } from '../syscalls/x86-64.js';
import { builtinRecipePath, listBuiltinRecipes, type BuiltinOptions } from './builtin-recipes.js';
import { closestMatch } from './did-you-mean.js';
import { issuesToDiagnostics } from './issue-messages.js';
import { mergeRecipeLayers, toRecipe } from './normalise-recipe.js';
import { locatePath, nodePosition, offsetPosition } from './yaml-position.js';

/** What loading a recipe gives: the recipe when there are no errors, and every diagnostic found. */
export interface RecipeResult {
  recipe?: Recipe;
  errors: RecipeDiagnostic[];
  warnings: RecipeDiagnostic[];
}

/** Options of {@link parseRecipe} and `loadRecipe`. */
export interface RecipeOptions extends BuiltinOptions {
  /** The `source` the recipe records; by default the file name given. */
  source?: string;
  /** Called with each file read and its text: the recipe's own (when read from a path), then each it extends. */
  onRead?: (path: string, text: string) => void;
}

type RawRecipe = Record<string, unknown>;

/** The longest `extends` chain read, counting the recipe itself. */
const MAX_EXTENDS_DEPTH = 64;

/** One file of an `extends` chain, validated on its own and merged with its ancestors. */
interface Layer {
  raw?: RawRecipe;
  errors: RecipeDiagnostic[];
  warnings: RecipeDiagnostic[];
}

/**
 * Parse and validate a recipe given as text. `file` names it in messages and anchors relative
 * paths (`extends`, `entry.handler`). An `extends` chain is read from disk and merged.
 */
export function parseRecipe(text: string, file: string, options: RecipeOptions = {}): RecipeResult {
  const layer = parseLayer(text, file, [], options);
  if (layer.errors.length > 0 || layer.raw === undefined) return { errors: layer.errors, warnings: layer.warnings };
  const parsed = recipeSchema().safeParse(layer.raw);
  if (!parsed.success) {
    // Each layer passed on its own, so a merged recipe can only fail if merging is wrong: say so plainly.
    const message = parsed.error.issues.map((issue) => `${formatRecipePath(issue.path as RecipePath)}: ${issue.message}`).join('; ');
    return { errors: [diagnosticAt('RECIPE_EXTENDS', file, 1, 1, [], `the merged recipe is invalid: ${message}`)], warnings: layer.warnings };
  }
  return { recipe: toRecipe(parsed.data, options.source ?? file), errors: [], warnings: layer.warnings };
}

/** Read a recipe file (no built-in names: see `loadRecipe`). */
export function readRecipeFile(path: string, options: RecipeOptions = {}): RecipeResult {
  const text = readText(path);
  if (typeof text !== 'string') {
    return { errors: [diagnosticAt('RECIPE_NOT_FOUND', path, 0, 0, [], `cannot read the recipe: ${text.message}`)], warnings: [] };
  }
  options.onRead?.(path, text);
  return parseRecipe(text, path, options);
}

function parseLayer(text: string, file: string, chain: string[], options: RecipeOptions): Layer {
  const yaml = yamlModule();
  const lineCounter: LineCounter = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const warnings: RecipeDiagnostic[] = doc.warnings.map((warning) => yamlDiagnostic(warning, file, lineCounter, 'warning'));
  const firstError = doc.errors[0];
  if (firstError) {
    // Later YAML errors are mostly echoes of the first; one accurate message beats five confusing ones.
    return { errors: [yamlDiagnostic(firstError, file, lineCounter, 'error')], warnings };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    return { errors: [diagnosticAt('RECIPE_YAML', file, 1, 1, [], (error as Error).message)], warnings };
  }
  if (value === null || value === undefined) {
    return { errors: [diagnosticAt('RECIPE_SCHEMA', file, 1, 1, [], "the recipe is empty: it needs at least 'name' and 'match'")], warnings };
  }

  const checked = recipeSchema().safeParse(value);
  if (!checked.success) {
    const errors = issuesToDiagnostics(checked.error.issues, { file, doc, lineCounter, value });
    return { errors: sortDiagnostics(errors), warnings };
  }
  const raw = value as RawRecipe;
  const errors: RecipeDiagnostic[] = [];
  const at = (code: RecipeDiagnosticCode, path: RecipePath, message: string, severity: 'error' | 'warning' = 'error'): RecipeDiagnostic => {
    const located = locatePath(doc, path);
    const { line, col } = nodePosition(lineCounter, located.value ?? located.key ?? located.nearest);
    return diagnosticAt(code, file, line, col, path, message, severity);
  };

  if (raw.match === undefined && raw.extends === undefined) {
    errors.push(at('RECIPE_SCHEMA', [], "missing required key 'match' (only a recipe with 'extends' may leave it out)"));
  }
  settleEntry(raw, file, doc, text, errors, at);
  warnings.push(...lintRecipe(raw, checked.data, at));
  if (errors.length > 0) return { errors, warnings };

  const parentName = raw.extends;
  if (typeof parentName !== 'string') return { raw, errors, warnings };
  const parent = resolveExtends(parentName, file, options);
  const here = resolve(file);
  if (parent.path === undefined) {
    return { errors: [at('RECIPE_EXTENDS', ['extends'], `extends: ${parent.problem}`)], warnings };
  }
  // A chain is a handful of files in practice; thousands would recurse past the stack (a crafted
  // chain of 4,000 files ended in an internal error).
  if (chain.length + 1 >= MAX_EXTENDS_DEPTH) {
    return { errors: [at('RECIPE_EXTENDS', ['extends'], `extends: the chain of extends is longer than ${MAX_EXTENDS_DEPTH} recipes`)], warnings };
  }
  if (parent.path === here || chain.includes(parent.path)) {
    const loop = [...chain, here, parent.path].map(displayName).join(' -> ');
    return { errors: [at('RECIPE_EXTENDS', ['extends'], `extends: the chain of extends loops: ${loop}`)], warnings };
  }
  const parentText = readText(parent.path);
  if (typeof parentText !== 'string') {
    return { errors: [at('RECIPE_EXTENDS', ['extends'], `extends: cannot read '${parent.display}': ${parentText.message}`)], warnings };
  }
  options.onRead?.(parent.path, parentText);
  const inherited = parseLayer(parentText, parent.display, [...chain, here], options);
  warnings.push(...inherited.warnings);
  if (inherited.errors.length > 0 || inherited.raw === undefined) return { errors: inherited.errors, warnings };
  return { raw: mergeRecipeLayers(inherited.raw, raw), errors, warnings };
}

function displayName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/**
 * A name with a slash or a .yaml/.yml ending is a path, relative to the extending file unless it is
 * absolute; any other name is a built-in recipe.
 */
function resolveExtends(target: string, file: string, options: RecipeOptions): { path?: string; display: string; problem: string } {
  if (isPathLike(target)) {
    const display = isAbsolute(target) ? target : join(dirname(file), target);
    return { path: resolve(display), display, problem: '' };
  }
  const path = builtinRecipePath(target, options);
  if (path !== undefined) return { path, display: path, problem: '' };
  const names = listBuiltinRecipes(options).map((recipe) => recipe.name);
  const suggestion = closestMatch(target, names);
  const hint = suggestion ? ` (did you mean '${suggestion}'?)` : '';
  return { display: target, problem: `no built-in recipe '${target}'${hint}; built-in recipes: ${names.join(', ')}` };
}

/** Whether `extends` or `loadRecipe` was given a path rather than a built-in name. */
export function isPathLike(target: string): boolean {
  return target.includes('/') || target.includes('\\') || /\.ya?ml$/.test(target);
}

type At = (code: RecipeDiagnosticCode, path: RecipePath, message: string, severity?: 'error' | 'warning') => RecipeDiagnostic;

/**
 * Settle what only this file can: a handler path is relative to the recipe that names it, and an
 * address keeps every digit of its source text (a YAML integer above 2^53 loses its low bits).
 */
function settleEntry(raw: RawRecipe, file: string, doc: Document, text: string, errors: RecipeDiagnostic[], at: At): void {
  const entry = raw.entry;
  if (entry === null || typeof entry !== 'object') return;
  const map = entry as Record<string, unknown>;
  if (typeof map.handler === 'string') map.handler = resolve(dirname(file), map.handler);
  if (map.address === undefined) return;
  let digits = typeof map.address === 'string' ? map.address : undefined;
  if (typeof map.address === 'number') {
    const node = locatePath(doc, ['entry', 'address']).value;
    const range = node?.range;
    digits = range ? text.slice(range[0], range[1]).trim() : String(map.address);
  }
  let va: bigint | undefined;
  try {
    va = BigInt(digits ?? '');
  } catch {
    va = undefined;
  }
  if (va === undefined || va < 0n) {
    errors.push(at('RECIPE_SCHEMA', ['entry', 'address'], `entry.address: '${digits ?? ''}' is not a whole number; write it as 0x... in quotes`));
  } else if (va >= 1n << 64n) {
    errors.push(at('RECIPE_SCHEMA', ['entry', 'address'], `entry.address: 0x${va.toString(16)} does not fit in 64 bits`));
  } else {
    map.address = `0x${va.toString(16)}`;
  }
}

/**
 * Warnings about parts of a valid recipe that can never take effect. Only what the file itself
 * writes is checked: a default or an inherited list is not this file's doing.
 */
function lintRecipe(raw: RawRecipe, data: RecipeOutput, at: At): RecipeDiagnostic[] {
  const warnings: RecipeDiagnostic[] = [];
  const written = (raw.trampoline ?? {}) as Record<string, unknown>;
  const lists = (['prefer', 'fallback'] as const).filter((key) => written[key] !== undefined);
  const seen = new Set<string>();
  let afterTrap = false;
  for (const key of lists) {
    data.trampoline[key].forEach((variant, index) => {
      const path = ['trampoline', key, index];
      if (afterTrap) {
        warnings.push(at('RECIPE_REDUNDANT', path, `${formatRecipePath(path)}: '${variant}' comes after 'trap', which fits every site, so it is never tried`, 'warning'));
      } else if (seen.has(variant)) {
        warnings.push(at('RECIPE_REDUNDANT', path, `${formatRecipePath(path)}: '${variant}' is listed earlier, so it is never tried again`, 'warning'));
      }
      seen.add(variant);
      if (variant === 'trap') afterTrap = true;
    });
  }
  (data.match ?? []).forEach((rule, index) => {
    for (const side of ['include', 'exclude'] as const) {
      (rule.syscalls?.[side] ?? []).forEach((nr, i) => {
        if (typeof nr === 'number' && syscallName(nr) === undefined) {
          const path = ['match', index, 'syscalls', side, i];
          warnings.push(at('RECIPE_UNKNOWN_SYSCALL', path, `${formatRecipePath(path)}: ${nr} is not in the x86-64 system call table`, 'warning'));
        }
      });
    }
  });
  return warnings;
}

function yamlDiagnostic(
  error: { code: string; message: string; pos: [number, number] },
  file: string,
  lineCounter: LineCounter,
  severity: 'error' | 'warning',
): RecipeDiagnostic {
  const { line, col } = offsetPosition(lineCounter, error.pos[0]);
  // yaml's messages end with a period and sometimes repeat the position; keep the first sentence.
  let message = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+.*$/, '') ?? error.message;
  if (error.code === 'MULTIPLE_DOCS') message = "a recipe file holds one YAML document, and this '---' starts a second";
  return diagnosticAt('RECIPE_YAML', file, line, col, [], `YAML: ${message}`, severity);
}

function diagnosticAt(
  code: RecipeDiagnosticCode,
  file: string,
  line: number,
  col: number,
  path: RecipePath,
  message: string,
  severity: 'error' | 'warning' = 'error',
): RecipeDiagnostic {
  return new RecipeDiagnostic({ code, severity, file, line, col, path, message });
}

function sortDiagnostics(diagnostics: RecipeDiagnostic[]): RecipeDiagnostic[] {
  return [...diagnostics].sort((a, b) => a.line - b.line || a.col - b.col);
}

/** A recipe file's text, or why it cannot be read. */
export function readText(path: string): string | Error {
  try {
    // Not a device or a FIFO, which would be read without end (or wait for a writer forever).
    return readRegularFile(path).bytes.toString('utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Node's own messages repeat the path ("EISDIR: illegal operation on a directory, read '...'").
    return new Error(code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message);
  }
}
