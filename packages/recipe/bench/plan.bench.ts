/**
 * Planner speed: readElf + findSites + planPatches with the `unannotated` recipe (every decoded
 * `syscall`, displaced or trapped) over the system's libc.so.6, /bin/busybox and the node
 * executable, beside `objdump -d` over the same file in the same run. Wall time, median of several
 * runs; objdump on node takes seconds, so it runs at most twice there.
 *
 * Run alone: `node --conditions=libos-source --import tsx packages/recipe/bench/plan.bench.ts`;
 * the root `npm run bench` imports it and calls {@link run}.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readElf } from '@libos/elfkit';
import { findSites, loadRecipe, planPatches, type Recipe } from '@libos/recipe';

/** One measurement: our median, and the baseline's when there is one (as in elfkit's read.bench.ts). */
export interface BenchResult {
  /** What was measured. */
  readonly name: string;
  readonly unit: 'ms';
  readonly runs: number[];
  readonly median: number;
  readonly baseline?: { readonly name: string; readonly runs: number[]; readonly median: number };
  /** median / baseline.median: below 1 means faster than the baseline. */
  readonly ratio?: number;
  /** Sizes and counts that say what the work was. */
  readonly detail: string;
}

interface Target {
  label: string;
  path: string;
  runs: number;
  objdumpRuns: number;
}

const TARGETS: Target[] = [
  { label: 'libc.so.6', path: '/lib/x86_64-linux-gnu/libc.so.6', runs: 7, objdumpRuns: 5 },
  { label: 'busybox', path: '/bin/busybox', runs: 7, objdumpRuns: 5 },
  { label: 'node', path: process.execPath, runs: 3, objdumpRuns: 2 },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Counts {
  sites: number;
  patched: number;
  refused: number;
  byVariant: string;
  bytesAdded: number;
}

/** Reads, finds and plans; returns the wall time and what the plan holds. */
async function timePlan(path: string, recipe: Recipe): Promise<{ ms: number; counts: Counts }> {
  const t0 = performance.now();
  const elf = readElf(readFileSync(path));
  const report = findSites(elf, recipe.match);
  const { plan } = await planPatches(elf, recipe, report.sites);
  const ms = performance.now() - t0;
  const byVariant = Object.entries(plan.stats.byVariant).map(([v, n]) => `${v} ${n}`).join(', ');
  return {
    ms,
    counts: { sites: report.sites.length, patched: plan.stats.patched, refused: plan.stats.refused, byVariant, bytesAdded: plan.stats.bytesAdded },
  };
}

function timeObjdump(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // Output to /dev/null: objdump's own disassembling and formatting, not a pipe into this process.
    const devNull = openSync('/dev/null', 'w');
    const t0 = performance.now();
    const child = spawn('objdump', ['-d', path], { stdio: ['ignore', devNull, 'ignore'] });
    child.on('error', (e) => { closeSync(devNull); reject(e); });
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      closeSync(devNull);
      if (code !== 0) reject(new Error(`objdump -d ${path} exited with ${code}`));
      else resolve(ms);
    });
  });
}

/** Runs the planner benchmark: one result per binary that exists on this machine. */
export async function run(): Promise<BenchResult[]> {
  const { recipe, errors } = loadRecipe('unannotated');
  if (recipe === undefined) throw new Error(`recipe unannotated: ${errors.map(String).join('; ')}`);
  const results: BenchResult[] = [];
  for (const t of TARGETS) {
    if (!existsSync(t.path)) continue;
    // Warm-up (wasm, JIT, page cache), not counted.
    let last = await timePlan(t.path, recipe);
    const ours: number[] = [];
    for (let i = 0; i < t.runs; i++) {
      last = await timePlan(t.path, recipe);
      ours.push(last.ms);
    }
    const theirs: number[] = [];
    for (let i = 0; i < t.objdumpRuns; i++) theirs.push(await timeObjdump(t.path));
    const m = median(ours);
    const b = median(theirs);
    const c = last.counts;
    const size = readFileSync(t.path).length;
    results.push({
      name: `recipe: find and plan every syscall site (unannotated) in ${t.label}`,
      unit: 'ms',
      runs: ours,
      median: m,
      baseline: { name: `objdump -d ${t.label} (spawned, output to /dev/null)`, runs: theirs, median: b },
      ratio: m / b,
      detail: `${(size / 1e6).toFixed(1)} MB; ${c.sites} sites found, ${c.patched} patched (${c.byVariant || 'none'}), ${c.refused} refused; ${c.bytesAdded} bytes of code added`,
    });
  }
  return results;
}

function print(results: BenchResult[]): void {
  for (const r of results) {
    const base = r.baseline === undefined ? '' : `  vs ${r.baseline.name} ${r.baseline.median.toFixed(1)} ms (median of ${r.baseline.runs.length})  ratio ${r.ratio!.toFixed(2)}`;
    console.log(`${r.name}: ${r.median.toFixed(1)} ms (median of ${r.runs.length})${base}\n  ${r.detail}`);
  }
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  print(await run());
}
