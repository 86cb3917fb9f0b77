import { flag } from '../args.js';
import { verifyElf } from '@libos/elfkit';
import type { Command } from '../command.js';
import { CliError, EXIT } from '../errors.js';
import { loadElf } from '../load.js';
import { toCliError } from '../map-error.js';
import { formatTable, hex, toJson } from '../report.js';

/** `libos-patch verify`: has a rewritten file changed since it was written? */
export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check that a rewritten binary is unchanged since libos-patch wrote it',
  usage: 'verify <file> [--json]',
  details: [
    'A rewritten file records digests of its bytes in .libos.plan. verify recomputes them and lists',
    'the ranges that differ. Exit status 0 when none does, 1 when some do, 2 when the file was not',
    'written by libos-patch.',
  ].join('\n'),
  options: {
    json: { type: 'boolean', help: 'print { ok, changed, planBytes } as JSON' },
  },
  operands: { min: 1, max: 1, names: '<file>' },
  async run(ctx) {
    const file = ctx.args.positionals[0] ?? '';
    // A rewritten file is still an ELF file: say so first, rather than "no plan" on any file at all.
    const input = loadElf(file);
    let report;
    try {
      report = verifyElf(input.bytes);
    } catch (e) {
      throw toCliError(e, file);
    }
    if (flag(ctx.args, 'json')) {
      ctx.out.write(toJson({ file, ok: report.ok, changed: report.changed, planBytes: report.metadata.length }));
    } else if (report.ok) {
      ctx.out.write(`${file}: ${ctx.paint.green('ok')}: unchanged since it was rewritten\n`);
    } else {
      ctx.out.write(`${file}: ${ctx.paint.red('changed')}: ${report.changed.length} byte ranges differ from what was written\n`);
      ctx.out.write(formatTable(['OFFSET', 'LENGTH'], report.changed.map((c) => [hex(c.offset), String(c.length)]), ctx.paint));
    }
    if (report.ok) return EXIT.ok;
    return new CliError('CLI_VERIFY_FAILED', `${report.changed.length} byte ranges changed since it was rewritten`, { file });
  },
};
