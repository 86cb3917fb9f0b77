/**
 * Site discovery speed: readElf + findSites (instruction rule) over libc.so.6 and the node executable,
 * beside `objdump -d` over the same file in the same run. Wall time, median of several runs.
 *
 *   node --conditions=libos-source --import tsx packages/recipe/bench/discover.bench.ts
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { readElf } from '@libos/elfkit';
import { findSites } from '@libos/recipe';

/** One measured task, with the baseline it is compared to. */
export interface BenchResult {
  name: string;
  /** Median wall time of our task, ms. */
  ms: number;
  runs: number;
  baseline: { name: string; ms: number; runs: number };
  /** baseline.ms / ms: how many times faster than the baseline. */
  speedup: number;
  notes: string;
}

const TARGETS = [
  { label: 'libc.so.6', path: '/lib/x86_64-linux-gnu/libc.so.6', runs: 7, objdumpRuns: 5 },
  { label: 'node', path: process.execPath, runs: 5, objdumpRuns: 2 },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function timeFindSites(path: string): { ms: number; sites: number; candidates: number; functionsDecoded: number } {
  const t0 = performance.now();
  const elf = readElf(readFileSync(path));
  const report = findSites(elf, [{ instruction: 'syscall' }]);
  const ms = performance.now() - t0;
  return { ms, sites: report.sites.length, candidates: report.stats.candidates, functionsDecoded: report.stats.functionsDecoded };
}

function timeObjdump(path: string): number {
  const t0 = performance.now();
  // Output to /dev/null: the baseline pays for disassembling and formatting, not for a pipe into node.
  const r = spawnSync('objdump', ['-d', path], { stdio: ['ignore', 'ignore', 'inherit'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`objdump -d ${path} exited with ${r.status}`);
  return ms;
}

/** Runs the benchmark and returns one result per binary. */
export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const t of TARGETS) {
    const ours: number[] = [];
    let last = timeFindSites(t.path); // warm-up: wasm and JIT, not counted
    for (let i = 0; i < t.runs; i++) {
      last = timeFindSites(t.path);
      ours.push(last.ms);
    }
    const theirs: number[] = [];
    for (let i = 0; i < t.objdumpRuns; i++) theirs.push(timeObjdump(t.path));
    const ms = median(ours);
    const baselineMs = median(theirs);
    results.push({
      name: `findSites ${t.label}`,
      ms,
      runs: t.runs,
      baseline: { name: `objdump -d ${t.label}`, ms: baselineMs, runs: t.objdumpRuns },
      speedup: baselineMs / ms,
      notes: `${last.sites} sites from ${last.candidates} candidates, ${last.functionsDecoded} functions decoded`,
    });
  }
  return results;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await run()) {
    console.log(
      `${r.name.padEnd(22)} ${r.ms.toFixed(1).padStart(8)} ms (median of ${r.runs})   ` +
        `${r.baseline.name.padEnd(20)} ${r.baseline.ms.toFixed(1).padStart(8)} ms (median of ${r.baseline.runs})   ` +
        `${r.speedup.toFixed(1)}x faster   ${r.notes}`,
    );
  }
}
