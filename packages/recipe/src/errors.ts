/**
 * Diagnostics of the recipe engine. Like the `yaml` package's errors they are collected and returned,
 * never thrown, and each carries a code and the position in the recipe file it is about.
 */

/** What went wrong, one code per kind of fault; `docs/recipe-language.md` lists them. */
export const RECIPE_DIAGNOSTIC_CODES = [
  /** The file is not well-formed YAML (or is more than one document). */
  'RECIPE_YAML',
  /** A value has the wrong type, is out of range, is not an allowed value, or a required key is missing. */
  'RECIPE_SCHEMA',
  /** A key the recipe language does not know (usually a typo; the message says the closest key). */
  'RECIPE_UNKNOWN_KEY',
  /** A system call name that is not in the x86-64 table (an error), or a number that is not (a warning). */
  'RECIPE_UNKNOWN_SYSCALL',
  /** `extends` names a recipe that does not load, or the chain of `extends` loops. */
  'RECIPE_EXTENDS',
  /** No built-in recipe has that name, or the recipe file does not exist or cannot be read. */
  'RECIPE_NOT_FOUND',
  /** A warning: part of the recipe can never take effect (a variant listed twice, variants after `trap`). */
  'RECIPE_REDUNDANT',
] as const;

/** One of {@link RECIPE_DIAGNOSTIC_CODES}. */
export type RecipeDiagnosticCode = (typeof RECIPE_DIAGNOSTIC_CODES)[number];

/** Whether a diagnostic stops the recipe from loading (`error`) or only points at a likely mistake. */
export type RecipeDiagnosticSeverity = 'error' | 'warning';

/** A path into the recipe as written: YAML keys (kebab-case) and list indices. */
export type RecipePath = (string | number)[];

/**
 * One problem in a recipe, at a 1-based line and column of its file. `line` is 0 when there is no
 * position to give (a file that cannot be read, an unknown built-in name); `toString` then leaves
 * the position out.
 */
export class RecipeDiagnostic {
  readonly code: RecipeDiagnosticCode;
  readonly severity: RecipeDiagnosticSeverity;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly path: RecipePath;
  /** The full message, starting with the field path where there is one: `abi.flags: ...`. */
  readonly message: string;

  constructor(init: {
    code: RecipeDiagnosticCode;
    severity?: RecipeDiagnosticSeverity;
    file: string;
    line: number;
    col: number;
    path?: RecipePath;
    message: string;
  }) {
    this.code = init.code;
    this.severity = init.severity ?? 'error';
    this.file = init.file;
    this.line = init.line;
    this.col = init.col;
    this.path = init.path ?? [];
    this.message = init.message;
  }

  /** `file:line:col: message`, the form compilers and editors turn into links. */
  toString(): string {
    if (this.line === 0) return `${this.file}: ${this.message}`;
    return `${this.file}:${this.line}:${this.col}: ${this.message}`;
  }
}

/** `match[0].preceded-by`: a recipe path the way it is written in YAML. */
export function formatRecipePath(path: RecipePath): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? part : `.${part}`;
  }
  return text;
}
