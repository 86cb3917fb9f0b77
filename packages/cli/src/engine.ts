/**
 * The engine functions the commands call, looked up by name at run time. The packages export them
 * as they land; a function that is not there yet makes its command fail with an internal error
 * naming it, instead of breaking the build of every other command.
 */
import * as elfkit from '@libos/elfkit';
import * as recipeEngine from '@libos/recipe';
import type { ElfFile } from '@libos/elfkit';
import type { Entry, MatchRule, Recipe, Site, Variant } from '@libos/recipe';
import { CliError } from './errors.js';

/** A diagnostic of site discovery: `{ code, va?, message }`. */
export interface DiscoverDiagnostic {
  code: string;
  va?: bigint;
  message: string;
}

/** What `findSites` returns. */
export interface SiteReport {
  sites: Site[];
  reported: Site[];
  diagnostics: DiscoverDiagnostic[];
  stats: Record<string, number>;
}

/** The parts of a PatchPlan (packages/recipe/src/plan/plan-types.ts) the CLI reports. */
export interface PlanView {
  entry: Entry;
  recipe: { name: string; source: string };
  patches: { site: number; va: bigint; variant: Variant; relaxations: string[]; reason: string; rule: string }[];
  refused: { site: number; va: bigint; rule: string; reason: string }[];
  stats: {
    sites: number;
    patched: number;
    refused: number;
    reported: number;
    byVariant: Partial<Record<Variant, number>>;
    relaxations: Record<string, number>;
    bytesAdded: number;
  };
}

/** A warning of the planner: anything with a message (and maybe a code). */
export interface PlanWarning {
  code?: string;
  message: string;
  toString(): string;
}

/** What `verifyElf` returns. */
export interface VerifyReport {
  ok: boolean;
  changed: { offset: number; length: number }[];
  metadata: Uint8Array;
}

interface Engine {
  readElf(bytes: Uint8Array): ElfFile;
  verifyElf(bytes: Uint8Array): VerifyReport;
  revertElf(bytes: Uint8Array): Uint8Array;
  findSites(elf: ElfFile, rules: readonly MatchRule[]): SiteReport;
  planPatches(elf: ElfFile, recipe: Recipe, sites: Site[], options?: { entry?: Entry }): Promise<{ plan: PlanView; warnings: PlanWarning[] }>;
  serializePlan(plan: PlanView): string;
  rewriteElf(elf: ElfFile, plan: PlanView): Uint8Array;
}

const PACKAGE_OF: Record<keyof Engine, string> = {
  readElf: '@libos/elfkit',
  verifyElf: '@libos/elfkit',
  revertElf: '@libos/elfkit',
  findSites: '@libos/recipe',
  planPatches: '@libos/recipe',
  serializePlan: '@libos/recipe',
  rewriteElf: '@libos/recipe',
};

/** The engine function `name`, or a CLI_INTERNAL error when this build of the engine lacks it. */
export function engine<K extends keyof Engine>(name: K): Engine[K] {
  const from = PACKAGE_OF[name] === '@libos/elfkit' ? (elfkit as Record<string, unknown>) : (recipeEngine as Record<string, unknown>);
  const fn = from[name];
  if (typeof fn !== 'function') {
    throw new CliError('CLI_INTERNAL', `internal error: ${PACKAGE_OF[name]} does not export ${name}() in this build`);
  }
  return fn as Engine[K];
}
