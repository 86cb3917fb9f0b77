import type { OptionSpec, ParsedArgs } from './args.js';
import type { CliError } from './errors.js';
import type { Progress } from './progress.js';
import type { Paint } from './report.js';

/** Where a command writes: results to `out`, diagnostics to `err`. */
export interface CommandIo {
  out: { write(s: string): unknown; isTTY?: boolean };
  err: { write(s: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * When the bin began (its first line) and when it had loaded the CLI, as performance.now()
 * readings: what --timings splits the time before a command into. Absent when main() is called
 * by a program of its own.
 */
export interface StartupMarks {
  binStart: number;
  cliLoaded: number;
}

/** What a command's `run` gets. */
export interface CommandContext extends CommandIo {
  args: ParsedArgs;
  paint: Paint;
  progress: Progress;
  /** Print `libos-patch: warning: <text>` on stderr. */
  warn(text: string): void;
  startup?: StartupMarks;
}

/** One subcommand of `libos-patch`. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** `sites <elf> [--recipe R] [--json]` */
  usage: string;
  /** Paragraphs after the option list in `--help`. */
  details?: string;
  options: Record<string, OptionSpec>;
  operands: { min: number; max: number; names: string };
  /**
   * Returns the exit status, or the CliError a command ends with after printing its results
   * (`apply --strict` refusals, `verify` changes); other failures are thrown as CliError. bin.ts
   * prints either as the one `libos-patch: error:` line.
   */
  run(ctx: CommandContext): Promise<number | CliError>;
}
