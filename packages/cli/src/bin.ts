/**
 * The `libos-patch` command: parse the command line, run one command, and turn whatever went wrong
 * into an exit status and a single line on stderr.
 */
import pkg from '../package.json';
import { parseCommandArgs } from './args.js';
import type { CommandIo, StartupMarks } from './command.js';
import { COMMANDS } from './command-list.js';
import { CliError, EXIT, usageError } from './errors.js';
import { commandHelp, mainHelp } from './help.js';
import { toCliError } from './map-error.js';
import { createProgress } from './progress.js';
import { usePaint } from './report.js';

/** The CLI's version (its package.json's). */
export const VERSION: string = pkg.version;

function defaultIo(): CommandIo {
  return { out: process.stdout, err: process.stderr, env: process.env, cwd: process.cwd() };
}

/**
 * The one place a failure is printed: `libos-patch: error: <file>[:line:col]: <message>`. A usage
 * error of a known command has the usage after the message, on the same line, so that scripts can
 * keep reading the first line only.
 */
function report(io: CommandIo, error: CliError, debug: boolean, usage?: string): number {
  const text = error.code === 'CLI_USAGE' && usage !== undefined ? `${error.message} (usage: libos-patch ${usage})` : error.location();
  io.err.write(`libos-patch: error: ${text}\n`);
  if (debug) {
    const cause = error.cause instanceof Error ? error.cause : error;
    io.err.write(`${cause.stack ?? String(cause)}\n`);
  }
  return error.exitStatus;
}

/**
 * Run `libos-patch` with `argv` (without node and the script). Returns the exit status and sets
 * `process.exitCode` to it; never throws. `startup`: the bin's marks, for --timings.
 */
export async function main(argv: string[], io: CommandIo = defaultIo(), startup?: StartupMarks): Promise<number> {
  if (io.out === process.stdout) {
    // `libos-patch plan x -r R | head`: a reader that goes away is not an error worth a stack trace.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  const status = await run(argv, io, startup);
  if (io.out === process.stdout) process.exitCode = status;
  return status;
}

async function run(argv: string[], io: CommandIo, startup: StartupMarks | undefined): Promise<number> {
  const debug = argv.includes('--debug');
  const first = argv[0];
  if (first === '--version' || first === '-V') {
    io.out.write(`libos-patch ${VERSION}\n`);
    return EXIT.ok;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const named = first === 'help' ? COMMANDS.find((c) => c.name === argv[1]) : undefined;
    io.out.write(named ? commandHelp(await named.load()) : mainHelp(COMMANDS));
    return EXIT.ok;
  }
  if (first === undefined) {
    io.err.write(mainHelp(COMMANDS));
    return EXIT.input;
  }
  const entry = COMMANDS.find((c) => c.name === first);
  if (entry === undefined) {
    const hint = first.startsWith('-') ? 'options come after a command' : `unknown command '${first}'`;
    return report(io, usageError(`${hint}; commands: ${COMMANDS.map((c) => c.name).join(', ')} (see libos-patch --help)`), debug);
  }

  let command;
  try {
    command = await entry.load();
  } catch (e) {
    return report(io, toCliError(e), debug);
  }
  const paint = usePaint(io.out, io.env);
  const progress = createProgress(io.err, true);
  try {
    const args = parseCommandArgs(argv.slice(1), command.options, command.operands);
    if (args.values.help === true) {
      io.out.write(commandHelp(command));
      return EXIT.ok;
    }
    const warnPaint = usePaint(io.err, io.env);
    const warn = (text: string): void => {
      io.err.write(`libos-patch: ${warnPaint.yellow('warning')}: ${text}\n`);
    };
    const result = await command.run({ ...io, args, paint, progress, warn, ...(startup !== undefined ? { startup } : {}) });
    // A failure the command ends with after printing its results: an outcome, not a crash, so no
    // stack trace even with --debug.
    return typeof result === 'number' ? result : report(io, result, false);
  } catch (e) {
    return report(io, toCliError(e), debug, command.usage);
  } finally {
    progress.done();
  }
}
