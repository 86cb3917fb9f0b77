import { ENTRY_FORMS, flag, formatEntry, parseEntry, requiredOption, stringOption } from '../args.js';
import { rewriteElf } from '@libos/recipe';
import type { Command, StartupMarks } from '../command.js';
import type { Progress } from '../progress.js';
import { CliError, EXIT } from '../errors.js';
import { checkOutput, writeOutput } from '../io.js';
import { loadElf, loadRecipeOrFail } from '../load.js';
import { toCliError } from '../map-error.js';
import { planSites, warnDiagnostics } from '../plan-sites.js';
import { formatCounts, formatFields, formatTable, hex, reasonWithoutRule, toJson, type Paint } from '../report.js';

/** `libos-patch apply`: rewrite a binary with a recipe. */
export const applyCommand: Command = {
  name: 'apply',
  summary: 'rewrite a binary\'s syscall sites with a recipe',
  usage: 'apply <elf> --recipe R -o OUT [--entry E] [--strict] [--json] [--timings]',
  details: [
    'Writes the rewritten binary to OUT (through a temporary file in OUT\'s folder, renamed into place;',
    'the permission bits of the input are kept and the input is never touched), then prints what was',
    'done: the sites found, those patched per variant, the ABI relaxations applied, the sites refused',
    'and why, and the bytes added.',
    '',
    `--entry replaces the recipe's entry: ${ENTRY_FORMS}.`,
    'With --strict a plan that refuses any site writes nothing and exits with status 1.',
    '',
    '--timings prints on stderr how long each stage took, and the time before the command began',
    '(Node\'s start and loading the CLI).',
  ].join('\n'),
  options: {
    recipe: { type: 'string', short: 'r', value: 'R', help: 'a recipe file or the name of a built-in recipe' },
    output: { type: 'string', short: 'o', value: 'OUT', help: 'where to write the rewritten binary' },
    entry: { type: 'string', short: 'e', value: 'E', help: `override the recipe's entry: ${ENTRY_FORMS}` },
    strict: { type: 'boolean', help: 'fail (exit 1, nothing written) when any site is refused' },
    json: { type: 'boolean', help: 'print the summary as JSON' },
    timings: { type: 'boolean', help: 'print how long each stage took on stderr' },
  },
  operands: { min: 1, max: 1, names: '<elf>' },
  async run(ctx) {
    const file = ctx.args.positionals[0] ?? '';
    const recipeName = requiredOption(ctx.args, 'recipe', 'R');
    const output = requiredOption(ctx.args, 'output', 'OUT');
    const entryText = stringOption(ctx.args, 'entry');
    const entry = entryText !== undefined ? parseEntry(entryText, ctx.cwd) : undefined;
    const strict = flag(ctx.args, 'strict');
    checkOutput(output, ctx.args.positionals[0]);
    const timings = flag(ctx.args, 'timings') ? new StageTimes(ctx.startup) : undefined;
    if (timings !== undefined) ctx = { ...ctx, progress: timings.around(ctx.progress) };
    ctx.progress.stage('reading', 0);
    const input = loadElf(file);
    const recipe = loadRecipeOrFail(recipeName, ctx.warn);

    let planned;
    let bytes: Uint8Array | undefined;
    try {
      planned = await planSites(input.elf, recipe, { entry, progress: ctx.progress });
      warnDiagnostics(planned.report, input.elf, file, ctx.warn);
      for (const w of planned.warnings) ctx.warn(`${file}: ${w}`);
      if (!(strict && planned.plan.refused.length > 0)) {
        ctx.progress.stage('writing', 0.8);
        bytes = rewriteElf(input.elf, planned.plan);
      }
    } catch (e) {
      throw toCliError(e, file);
    } finally {
      ctx.progress.done();
    }
    timings?.mark('saving');
    if (bytes !== undefined) await writeOutput(output, bytes, { mode: input.mode, input: file });
    if (timings !== undefined) ctx.err.write(`libos-patch: timings: ${timings.format()}\n`);

    const { plan } = planned;
    const summary = {
      input: file,
      output: bytes !== undefined ? output : null,
      recipe: plan.recipe,
      entry: formatEntry(plan.entry),
      sites: plan.stats.sites,
      reported: plan.stats.reported,
      patched: plan.stats.patched,
      byVariant: plan.stats.byVariant,
      relaxations: plan.stats.relaxations,
      refused: plan.refused.map((r) => ({ va: r.va, rule: r.rule, reason: r.reason })),
      bytesAdded: plan.stats.bytesAdded,
      inputSize: input.bytes.length,
      outputSize: bytes?.length ?? null,
    };
    if (flag(ctx.args, 'json')) {
      ctx.out.write(toJson(summary));
    } else {
      const p = ctx.paint;
      const refusedText = plan.refused.length === 0 ? p.green('0') : p.yellow(String(plan.refused.length));
      ctx.out.write(formatFields([
        ['input', `${file} (${input.bytes.length} bytes)`],
        ['output', bytes !== undefined ? `${output} (${bytes.length} bytes)` : p.red('not written (--strict)')],
        ['recipe', `${plan.recipe.name} (${plan.recipe.source})`],
        ['entry', summary.entry],
        ['sites found', `${plan.stats.sites}${plan.stats.reported > 0 ? ` (+${plan.stats.reported} int80/sysenter, reported only)` : ''}`],
        ['patched', `${plan.stats.patched}${plan.stats.patched > 0 ? ` (${formatCounts(plan.stats.byVariant)})` : ''}`],
        ['relaxations', formatCounts(plan.stats.relaxations)],
        ['refused', refusedText],
        ['bytes added', String(plan.stats.bytesAdded)],
      ], p));
      if (plan.refused.length > 0) ctx.out.write(formatRefusals(plan.refused, p));
    }
    if (strict && plan.refused.length > 0) {
      return new CliError('CLI_SITES_REFUSED', `${plan.refused.length} of ${plan.stats.sites} sites refused (--strict): nothing written`, { file });
    }
    return EXIT.ok;
  },
};

/**
 * Stage times for --timings: the progress stages (reading, finding sites, planning, writing) and
 * marks of the command's own, each measured to the next. The time from the process's start to
 * the command's comes first: split into Node's own start (to the bin's first line), loading the
 * CLI (the bundle, and Node's crypto, zlib and streams, which the bin loads first) and loading the
 * command (its engine: iced-x86, zod, yaml) when the bin says when it began, else as one figure.
 */
class StageTimes {
  private readonly marks: { label: string; at: number }[];

  constructor(startup?: StartupMarks) {
    this.marks = startup === undefined
      ? [{ label: 'before the command (Node\'s start and loading the CLI)', at: 0 }]
      : [{ label: 'Node\'s start', at: 0 }, { label: 'loading the CLI', at: startup.binStart }, { label: 'loading the command', at: startup.cliLoaded }];
  }

  mark(label: string): void {
    this.marks.push({ label, at: performance.now() });
  }

  /** `progress`, recording each stage it is told of. */
  around(progress: Progress): Progress {
    return {
      stage: (label, fraction) => {
        this.mark(label);
        progress.stage(label, fraction);
      },
      done: () => progress.done(),
    };
  }

  /** `before the command ... 110 ms, reading 7 ms, ..., total 290 ms`. */
  format(): string {
    const end = performance.now();
    const parts = this.marks.map((m, i) => `${m.label} ${((this.marks[i + 1]?.at ?? end) - m.at).toFixed(0)} ms`);
    return `${parts.join(', ')}, total ${end.toFixed(0)} ms`;
  }
}

/** How many refused sites the text summary lists one by one; --json has them all. */
const LISTED_REFUSALS = 10;

/** Refusals grouped by reason (most frequent first), then the first few sites. */
function formatRefusals(refused: { va: bigint; rule: string; reason: string }[], p: Paint): string {
  const byReason = new Map<string, number>();
  for (const r of refused) {
    const reason = reasonWithoutRule(r.reason, r.rule);
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
  }
  const groups = [...byReason].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const width = String(groups[0]?.[1] ?? 0).length;
  let text = '\nrefused, by reason:\n' + groups.map(([reason, n]) => `  ${String(n).padStart(width)}  ${reason}`).join('\n') + '\n\n';
  const listed = refused.slice(0, LISTED_REFUSALS);
  text += formatTable(['REFUSED', 'RULE', 'REASON'], listed.map((r) => [hex(r.va), r.rule, reasonWithoutRule(r.reason, r.rule)]), p);
  if (refused.length > listed.length) text += `... and ${refused.length - listed.length} more (--json lists every one)\n`;
  return text;
}
