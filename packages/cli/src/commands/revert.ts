import { flag, requiredOption } from '../args.js';
import { revertElf } from '@libos/elfkit';
import type { Command } from '../command.js';
import { checkOutput, writeOutput } from '../io.js';
import { loadElf } from '../load.js';
import { toCliError } from '../map-error.js';
import { toJson } from '../report.js';

/** `libos-patch revert`: rebuild the original file from a rewritten one. */
export const revertCommand: Command = {
  name: 'revert',
  summary: 'rebuild the original binary, byte for byte, from a rewritten one',
  usage: 'revert <file> -o OUT [--json]',
  details: 'Fails (exit 2) when the file was not written by libos-patch or has changed since.',
  options: {
    output: { type: 'string', short: 'o', value: 'OUT', help: 'where to write the original' },
    json: { type: 'boolean', help: 'print { input, output, size } as JSON' },
  },
  operands: { min: 1, max: 1, names: '<file>' },
  async run(ctx) {
    const file = ctx.args.positionals[0] ?? '';
    const output = requiredOption(ctx.args, 'output', 'OUT');
    checkOutput(output, ctx.args.positionals[0]);
    // A rewritten file is still an ELF file: say so first, rather than "no plan" on any file at all.
    const input = loadElf(file);
    let bytes: Uint8Array;
    try {
      bytes = revertElf(input.bytes);
    } catch (e) {
      throw toCliError(e, file);
    }
    await writeOutput(output, bytes, { mode: input.mode, input: file });
    if (flag(ctx.args, 'json')) ctx.out.write(toJson({ input: file, output, size: bytes.length }));
    else ctx.out.write(`${output}: the original of ${file} (${bytes.length} bytes)\n`);
    return 0;
  },
};
