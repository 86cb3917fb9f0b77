import { flag, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { toCliError } from '../map-error.js';
import { loadElf, loadRecipeOrFail } from '../load.js';
import { allSites, DISCOVERY_RULES, outcomesByVa, planSites, type SiteOutcome } from '../plan-sites.js';
import { engine } from '../engine.js';
import { formatTable, hex, toJson } from '../report.js';

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
    let report;
    let outcomes = new Map<bigint, SiteOutcome>();
    let planFailure: string | undefined;
    try {
      const planned = await planSites(input.elf, recipe, { progress: ctx.progress });
      report = planned.report;
      outcomes = outcomesByVa(planned.plan);
    } catch (e) {
      const error = toCliError(e, file);
      if (error.exitStatus === 3 && report === undefined) {
        // findSites itself failed, or planPatches is missing: discovery is the minimum we owe.
        try {
          report = engine('findSites')(input.elf, recipe.match);
        } catch {
          throw error;
        }
      }
      if (report === undefined) throw error;
      planFailure = `no plan: ${error.message}`;
      ctx.warn(`${file}: ${planFailure}`);
    }
    ctx.progress.done();
    for (const d of report.diagnostics) ctx.warn(`${file}: ${d.va !== undefined ? `${hex(d.va)}: ` : ''}${d.message}`);

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

    if (ctx.args.values.json === true || flag(ctx.args, 'json')) {
      ctx.out.write(toJson({ file, recipe: given ? recipe.source : null, sites: rows, stats: report.stats }));
      return 0;
    }
    const table = rows.map((r) => [
      hex(r.va), r.section, r.symbol ?? '-', r.rule, String(r.room), r.variant ?? ctx.paint.yellow('none'),
      r.variant ? r.reason : ctx.paint.yellow(r.reason),
    ]);
    ctx.out.write(formatTable(['ADDRESS', 'SECTION', 'SYMBOL', 'RULE', 'ROOM', 'VARIANT', 'REASON'], table, ctx.paint));
    const patchable = rows.filter((r) => r.variant !== null).length;
    ctx.err.write(`${rows.length} sites, ${patchable} with a variant${given ? '' : ` (as recipe '${DEFAULT_RECIPE}' would patch them)`}\n`);
    return 0;
  },
};
