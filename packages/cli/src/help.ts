import { COMMON_OPTIONS, type OptionSpec } from './args.js';
import type { Command } from './command.js';

const EXIT_TEXT = [
  'Exit status:',
  '  0  done',
  '  1  some sites were refused and --strict was given (verify: the file changed)',
  '  2  bad input or usage: an unreadable input, an output that cannot be written, a bad recipe',
  '  3  an internal error',
].join('\n');

function optionLines(options: Record<string, OptionSpec>): string {
  const entries = Object.entries({ ...options, ...COMMON_OPTIONS }).map(([name, spec]) => {
    const flagText = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`;
    return [flagText, spec.help] as const;
  });
  const width = Math.max(...entries.map(([f]) => f.length));
  return entries.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`).join('\n');
}

/** `libos-patch <command> --help`. */
export function commandHelp(command: Command): string {
  const parts = [`Usage: libos-patch ${command.usage}`, '', `${command.summary[0]?.toUpperCase()}${command.summary.slice(1)}.`];
  if (command.details) parts.push('', command.details);
  parts.push('', 'Options:', optionLines(command.options), '', EXIT_TEXT);
  return parts.join('\n') + '\n';
}

/** `libos-patch --help`. */
export function mainHelp(commands: readonly { name: string; summary: string }[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: libos-patch <command> [options]',
    '',
    'Rewrite the syscall instructions of x86-64 ELF binaries so that a library OS receives every',
    'system call as a plain jump. R is a recipe file or a built-in recipe name (see `recipes`).',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show help (also after a command: libos-patch apply --help)',
    '  -V, --version  print the version',
    '',
    'Results go to stdout, diagnostics to stderr. --json gives machine-readable output; NO_COLOR',
    'turns colour off (it is only used on a terminal anyway); --debug prints stack traces.',
    '',
    EXIT_TEXT,
  ].join('\n') + '\n';
}
