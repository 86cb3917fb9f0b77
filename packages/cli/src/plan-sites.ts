import { ANNOTATION_SECTION_PCREL, ANNOTATION_SECTION_QUAD } from '@libos/elfkit';
import type { ElfFile } from '@libos/elfkit';
import type { Entry, MatchRule, Recipe, Site } from '@libos/recipe';
import { findSites, planPatches, type PatchPlan, type SiteReport } from '@libos/recipe';
import type { Progress } from './progress.js';
import { hex } from './report.js';

/**
 * The rules `sites` uses without a recipe: every decoded `syscall`, and every site either form of
 * the seed's annotation table lists (annotations come first, so a site in both is credited to them).
 */
export const DISCOVERY_RULES: MatchRule[] = [
  { annotation: ANNOTATION_SECTION_QUAD },
  { annotation: ANNOTATION_SECTION_PCREL },
  { instruction: 'syscall' },
];

/** Sites found and the plan made for them. */
export interface PlannedSites {
  report: SiteReport;
  plan: PatchPlan;
  warnings: string[];
}

/** The shared first half of `sites`, `plan` and `apply`: find the recipe's sites, then plan them. */
export async function planSites(
  elf: ElfFile,
  recipe: Recipe,
  options: { entry?: Entry; progress: Progress },
): Promise<PlannedSites> {
  options.progress.stage('finding sites', 0.1);
  const report = findSites(elf, recipe.match);
  options.progress.stage(`planning ${report.sites.length} sites`, 0.4);
  const { plan, warnings } = await planPatches(elf, recipe, report, options.entry ? { entry: options.entry } : {});
  return { report, plan, warnings };
}

/** The variant a plan gives a site, or why it gives none. */
export interface SiteOutcome {
  variant?: string;
  reason: string;
  relaxations: string[];
}

/** Index a plan's patches and refusals by site va. */
export function outcomesByVa(plan: PatchPlan): Map<bigint, SiteOutcome> {
  const outcomes = new Map<bigint, SiteOutcome>();
  for (const p of plan.patches) outcomes.set(p.siteVa, { variant: p.variant, reason: p.reason, relaxations: p.relaxations });
  for (const r of plan.refused) outcomes.set(r.va, { reason: r.reason, relaxations: [] });
  return outcomes;
}

/** Sites and reported-only sites in address order. */
export function allSites(report: SiteReport): Site[] {
  return [...report.sites, ...report.reported].sort((a, b) => (a.va < b.va ? -1 : a.va > b.va ? 1 : 0));
}

const ANNOTATION_TABLES = [ANNOTATION_SECTION_QUAD, ANNOTATION_SECTION_PCREL];

/**
 * Print discovery's diagnostics as warnings. A missing annotation table is news only when the file
 * has neither form: recipes list both, and a file carries one.
 */
export function warnDiagnostics(report: SiteReport, elf: ElfFile, file: string, warn: (text: string) => void): void {
  const hasTable = ANNOTATION_TABLES.some((name) => elf.section(name) !== undefined);
  for (const d of report.diagnostics) {
    if (d.code === 'DISCOVER_ANNOTATION_TABLE' && hasTable) continue;
    warn(`${file}: ${d.va !== undefined ? `${hex(d.va)}: ` : ''}${d.message}`);
  }
}
