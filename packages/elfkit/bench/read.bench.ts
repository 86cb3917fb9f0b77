/**
 * Reader benchmark: open the node executable (~98 MB, ~185k symbols) and list its sections and
 * symbols, beside `readelf -S -s -W` on the same file in the same run (wall time, median of 5).
 *
 * Run alone: `node --conditions=libos-source --import tsx packages/elfkit/bench/read.bench.ts`;
 * the root `npm run bench` calls {@link run}.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readElf } from '../src/index.js';

/** One measurement: our median, and the baseline's when there is one. */
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

const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeReadelf(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    // Output to /dev/null: readelf's own work, not the cost of piping 20 MB into this process.
    const devNull = openSync('/dev/null', 'w');
    const t0 = performance.now();
    const child = spawn('readelf', args, { stdio: ['ignore', devNull, 'ignore'] });
    child.on('error', (e) => { closeSync(devNull); reject(e); });
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      closeSync(devNull);
      if (code !== 0) reject(new Error(`readelf exited with ${code}`));
      else resolve(ms);
    });
  });
}

/** Runs the reader benchmarks and returns one result per measurement. */
export async function run(): Promise<BenchResult[]> {
  const path = process.execPath;
  let counts = '';
  const listAll = (): number => {
    const t0 = performance.now();
    const elf = readElf(readFileSync(path));
    let names = 0;
    for (const s of elf.sections) names += s.name.length;
    for (const s of elf.symbols) names += s.name.length;
    for (const s of elf.dynamicSymbols) names += s.name.length;
    const ms = performance.now() - t0;
    counts = `${elf.sections.length} sections, ${elf.symbols.length} + ${elf.dynamicSymbols.length} symbols (${names} name bytes), ${(elf.bytes.length / 1e6).toFixed(0)} MB`;
    return ms;
  };
  const withFunctions = (): number => {
    const t0 = performance.now();
    const elf = readElf(readFileSync(path));
    const n = elf.functions().length + elf.syscallAnnotations().length + elf.relocations.length;
    const ms = performance.now() - t0;
    if (n === 0) throw new Error('nothing read');
    return ms;
  };

  // One warm-up each so that both read the file from the page cache.
  listAll();
  await timeReadelf(['-S', '-s', '-W', path]);
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(listAll());
    theirs.push(await timeReadelf(['-S', '-s', '-W', path]));
  }
  const fnRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) fnRuns.push(withFunctions());

  const m = median(ours);
  const b = median(theirs);
  return [
    {
      name: 'elfkit: open node, list sections and symbols',
      unit: 'ms',
      runs: ours,
      median: m,
      baseline: { name: 'readelf -S -s -W (spawned, output to /dev/null)', runs: theirs, median: b },
      ratio: m / b,
      detail: counts,
    },
    {
      name: 'elfkit: open node, functions() + relocations + syscallAnnotations()',
      unit: 'ms',
      runs: fnRuns,
      median: median(fnRuns),
      detail: 'functions from .symtab/.dynsym',
    },
  ];
}

function print(results: BenchResult[]): void {
  for (const r of results) {
    const base = r.baseline === undefined ? '' : `  vs ${r.baseline.name} ${r.baseline.median.toFixed(1)} ms  ratio ${r.ratio!.toFixed(2)}`;
    console.log(`${r.name}: ${r.median.toFixed(1)} ms (median of ${r.runs.length})${base}\n  ${r.detail}`);
  }
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  print(await run());
}
