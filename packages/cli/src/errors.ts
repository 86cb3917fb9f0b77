/**
 * The CLI's own error type. Every failure the command reports becomes one of these before it is
 * printed, so that `bin.ts` has one place that turns a failure into an exit status and one line.
 */

/** What went wrong at the command's level; `docs/error-codes.md` lists them with the engine's codes. */
export type CliErrorCode =
  /** Bad command line: an unknown command or option, a missing argument, a malformed `--entry`. */
  | 'CLI_USAGE'
  /** An input file does not exist or cannot be read. */
  | 'CLI_INPUT_UNREADABLE'
  /** An input file is not an ELF file the engine accepts (wraps the reader's ELF_* code). */
  | 'CLI_BAD_ELF'
  /** The recipe does not load: a YAML, schema or `extends` error at a line and column. */
  | 'CLI_BAD_RECIPE'
  /** The output cannot be written (missing folder, no permission, the input's own path). */
  | 'CLI_OUTPUT_UNWRITABLE'
  /** `--strict` was given and the plan refused some sites. */
  | 'CLI_SITES_REFUSED'
  /** `verify` found bytes that differ from what the recorded plan says. */
  | 'CLI_VERIFY_FAILED'
  /** The engine cannot do what was asked for this input (the code of its error is in the message). */
  | 'CLI_UNSUPPORTED'
  /** A bug: an engine function threw something it should not have. */
  | 'CLI_INTERNAL';

/** Exit statuses, as documented in `libos-patch --help`. */
export const EXIT = {
  ok: 0,
  /** Some sites were refused and `--strict` was given (or `verify` failed). */
  refused: 1,
  /** Bad input or usage. */
  input: 2,
  /** An internal error. */
  internal: 3,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

const STATUS: Record<CliErrorCode, ExitStatus> = {
  CLI_USAGE: EXIT.input,
  CLI_INPUT_UNREADABLE: EXIT.input,
  CLI_BAD_ELF: EXIT.input,
  CLI_BAD_RECIPE: EXIT.input,
  CLI_OUTPUT_UNWRITABLE: EXIT.input,
  CLI_SITES_REFUSED: EXIT.refused,
  CLI_VERIFY_FAILED: EXIT.refused,
  CLI_UNSUPPORTED: EXIT.input,
  CLI_INTERNAL: EXIT.internal,
};

/**
 * A failure the CLI reports as `libos-patch: error: <file>[:line:col]: <message>`. `file` is the
 * file the message is about (an input, the recipe, the output), when there is one.
 */
export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly file: string | undefined;
  readonly line: number;
  readonly col: number;
  /** The engine's code behind this error (ELF_BAD_MAGIC, RECIPE_SCHEMA...), when there is one. */
  readonly engineCode: string | undefined;

  constructor(
    code: CliErrorCode,
    message: string,
    where: { file?: string; line?: number; col?: number; engineCode?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: where.cause });
    this.name = 'CliError';
    this.code = code;
    this.file = where.file;
    this.line = where.line ?? 0;
    this.col = where.col ?? 0;
    this.engineCode = where.engineCode;
  }

  /** The exit status this error ends the command with. */
  get exitStatus(): ExitStatus {
    return STATUS[this.code];
  }

  /** `<file>[:line:col]: <message>`, or the message alone when no file is involved. */
  location(): string {
    if (this.file === undefined) return this.message;
    const position = this.line > 0 ? `:${this.line}:${this.col}` : '';
    return `${this.file}${position}: ${this.message}`;
  }
}

/** A usage error: the command line itself is wrong. */
export function usageError(message: string): CliError {
  return new CliError('CLI_USAGE', message);
}

/** True when `e` is a {@link CliError}. */
export function isCliError(e: unknown): e is CliError {
  return e instanceof CliError;
}
