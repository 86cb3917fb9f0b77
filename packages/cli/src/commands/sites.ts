import { flag, stringOption } from '../args.js';
import { findSites, planPatches, type SiteReport } from '@libos/recipe';
import type { Command } from '../command.js';
import { toCliError } from '../map-error.js';
import { loadElf, loadRecipeOrFail } from '../load.js';
import { allSites, DISCOVERY_RULES, outcomesByVa, warnDiagnostics, type SiteOutcome } from '../plan-sites.js';
import { formatTable, hex, reasonWithoutRule, toJson } from '../report.js';

/** The recipe that names variants for `sites` without `--recipe`: the seed's. */
const DEFAULT_RECIPE = 'glibc-rfc';

/** `libos-patch sites`: the syscall sites of a binary and what a recipe would do with each. */
export const sitesCommand: Command = {
  name: 'sites',
  summary: 'list the syscall sites of a binary and the variant each would get',
  usage: 'sites <elf> [--recipe R] [--json]',
  details: [
    'With --recipe, the sites that recipe\'s rules match. Without it, every site either annotation',
    `table lists and every syscall instruction found by decoding; the variant column then says what the`,
    `built-in recipe '${DEFAULT_RECIPE}' would use. int $0x80 and sysenter sites are listed but never patched.`,
  ].join('\n'),
  options: {
    recipe: { type: 'string', short: 'r', value: 'R', help: 'a recipe file or the name of a built-in recipe' },
    json: { type: 'boolean', help: 'print { "sites": [...] } as JSON' },
  },
  operands: { min: 1, max: 1, names: '<elf>' },
  async run(ctx) {
    const file = ctx.args.positionals[0] ?? '';
    const recipeName = stringOption(ctx.args, 'recipe');
    ctx.progress.stage('reading', 0);
    const input = loadElf(file);
    const given = recipeName !== undefined ? loadRecipeOrFail(recipeName, ctx.warn) : undefined;
    const base = given ?? loadRecipeOrFail(DEFAULT_RECIPE, ctx.warn);
    const recipe = given ?? { ...base, match: DISCOVERY_RULES };

    // Discovery alone answers "where"; the plan answers "how". A plan that fails still leaves the
    // list of sites worth printing, with the failure as every site's reason.
    ctx.progress.stage('finding sites', 0.1);
    let report: SiteReport;
    try {
      report = findSites(input.elf, recipe.match);
    } catch (e) {
      throw toCliError(e, file);
    }
    let outcomes = new Map<bigint, SiteOutcome>();
    let planFailure: string | undefined;
    try {
      ctx.progress.stage(`planning ${report.sites.length} sites`, 0.4);
      outcomes = outcomesByVa((await planPatches(input.elf, recipe, report)).plan);
    } catch (e) {
      planFailure = `no plan: ${toCliError(e, file).message}`;
      ctx.warn(`${file}: ${planFailure}`);
    }
    ctx.progress.done();
    // Without a recipe the annotation tables are only two of three sources: missing ones are no news.
    warnDiagnostics(given ? report : { ...report, diagnostics: report.diagnostics.filter((d) => d.code !== 'DISCOVER_ANNOTATION_TABLE') }, input.elf, file, ctx.warn);

    const rows = allSites(report).map((site) => {
      const outcome = outcomes.get(site.va);
      const reason = site.instruction !== 'syscall'
        ? `reported only: ${site.instruction} is the 32-bit ABI, never patched`
        : outcome?.reason ?? planFailure ?? 'not in the plan';
      return {
        va: site.va,
        offset: site.offset,
        section: site.section,
        symbol: site.symbol ?? null,
        instruction: site.instruction,
        rule: site.rule,
        room: site.room,
        syscall: site.syscallNr ?? null,
        variant: site.instruction === 'syscall' ? outcome?.variant ?? null : null,
        reason,
        relaxations: outcome?.relaxations ?? [],
      };
    });

    if (flag(ctx.args, 'json')) {
      ctx.out.write(toJson({ file, recipe: given ? recipe.source : null, sites: rows, stats: report.stats }));
      return 0;
    }
    const table = rows.map((r) => [
      hex(r.va), r.section, r.symbol ?? '-', r.rule, String(r.room), r.variant ?? ctx.paint.yellow('none'),
      // The table has a RULE column already: the plan's reason repeats it first.
      r.variant ? reasonWithoutRule(r.reason, r.rule) : ctx.paint.yellow(reasonWithoutRule(r.reason, r.rule)),
    ]);
    ctx.out.write(formatTable(['ADDRESS', 'SECTION', 'SYMBOL', 'RULE', 'ROOM', 'VARIANT', 'REASON'], table, ctx.paint));
    const patchable = rows.filter((r) => r.variant !== null).length;
    ctx.err.write(`${rows.length} sites, ${patchable} with a variant${given ? '' : ` (as recipe '${DEFAULT_RECIPE}' would patch them)`}\n`);
    return 0;
  },
};
