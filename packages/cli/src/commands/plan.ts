import { ENTRY_FORMS, parseEntry, requiredOption, stringOption } from '../args.js';
import { serializePlan } from '@libos/recipe';
import type { Command } from '../command.js';
import { checkOutput, writeOutput } from '../io.js';
import { loadElf, loadRecipeOrFail } from '../load.js';
import { toCliError } from '../map-error.js';
import { planSites, warnDiagnostics } from '../plan-sites.js';

/** `libos-patch plan`: the PatchPlan a recipe makes for a binary, as JSON. */
export const planCommand: Command = {
  name: 'plan',
  summary: 'print the patch plan a recipe makes for a binary (JSON)',
  usage: 'plan <elf> --recipe R [--entry E] [-o plan.json] [--json]',
  details: [
    'The plan is deterministic JSON (addresses as "0x..." strings, bytes as hex): every byte the',
    'rewrite changes and adds, with the reason for each variant and each refusal. It is what `apply`',
    'writes, and what another rewriter or loader can consume (docs/cookbook.md).',
  ].join('\n'),
  options: {
    recipe: { type: 'string', short: 'r', value: 'R', help: 'a recipe file or the name of a built-in recipe' },
    entry: { type: 'string', short: 'e', value: 'E', help: `override the recipe's entry: ${ENTRY_FORMS}` },
    output: { type: 'string', short: 'o', value: 'FILE', help: 'write the plan to FILE instead of stdout' },
    json: { type: 'boolean', help: 'accepted for symmetry: the plan is JSON already' },
  },
  operands: { min: 1, max: 1, names: '<elf>' },
  async run(ctx) {
    const file = ctx.args.positionals[0] ?? '';
    const recipeName = requiredOption(ctx.args, 'recipe', 'R');
    const entryText = stringOption(ctx.args, 'entry');
    const entry = entryText !== undefined ? parseEntry(entryText, ctx.cwd) : undefined;
    const output = stringOption(ctx.args, 'output');
    if (output !== undefined) checkOutput(output, file);
    ctx.progress.stage('reading', 0);
    const input = loadElf(file);
    const recipe = loadRecipeOrFail(recipeName, ctx.warn);
    let text: string;
    try {
      const { report, plan, warnings } = await planSites(input.elf, recipe, { entry, progress: ctx.progress });
      warnDiagnostics(report, input.elf, file, ctx.warn);
      for (const w of warnings) ctx.warn(`${file}: ${w}`);
      text = serializePlan(plan);
    } catch (e) {
      throw toCliError(e, file);
    } finally {
      ctx.progress.done();
    }
    if (!text.endsWith('\n')) text += '\n';
    if (output === undefined) ctx.out.write(text);
    else await writeOutput(output, text, { input: file });
    return 0;
  },
};
