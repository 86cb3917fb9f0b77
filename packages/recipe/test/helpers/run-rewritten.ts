/**
 * Shared steps of the run tests: rewrite a file with a recipe (the pipeline the CLI runs), run the
 * result, and read the `trace` entry's lines and strace's view of the same run.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { readElf } from '@libos/elfkit';
import { findSites, loadRecipe, planPatches, rewriteElf } from '@libos/recipe';
import type { Entry, PatchPlan, Recipe, Site } from '@libos/recipe';

let scratch: string | undefined;

/**
 * A fresh directory under one per-process scratch directory in os.tmpdir(), removed when the process
 * exits (kept with LIBOS_KEEP_RUN_DIRS=1, to look at the rewritten files after a failure).
 */
export function freshDir(label: string): string {
  if (scratch === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'libos-run-tests-'));
    scratch = dir;
    if (process.env['LIBOS_KEEP_RUN_DIRS'] !== '1') process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return mkdtempSync(join(scratch, `${label.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
}

/** A built-in recipe by name; throws with the loader's messages if it does not load. */
export function builtinRecipe(name: string): Recipe {
  const { recipe, errors } = loadRecipe(name);
  if (recipe === undefined) throw new Error(`recipe ${name}: ${errors.map((e) => e.message).join('; ')}`);
  return recipe;
}

export interface Rewritten {
  /** The rewritten file (named like the input, in its own directory). */
  path: string;
  plan: PatchPlan;
  /** Sites findSites reported for the recipe's rules (sorted by va, as the plan's site indexes). */
  sites: Site[];
}

/** Rewrites `input` with `recipe` (entry overridden when given) into a new directory. */
export async function rewriteWith(input: string, recipe: Recipe | string, entry?: Entry, dir?: string): Promise<Rewritten> {
  const r = typeof recipe === 'string' ? builtinRecipe(recipe) : recipe;
  const elf = readElf(readFileSync(input));
  const report = findSites(elf, r.match);
  const { plan } = await planPatches(elf, r, report.sites, entry === undefined ? {} : { entry });
  const outDir = dir ?? freshDir(`${basename(input)}-${r.name}-${entry?.kind ?? 'recipe'}`);
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, basename(input));
  writeFileSync(path, rewriteElf(elf, plan));
  chmodSync(path, 0o755);
  return { path, plan, sites: [...report.sites].sort((x, y) => (x.va < y.va ? -1 : x.va > y.va ? 1 : 0)) };
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (killed after timeoutMs) and keeps all of its output. */
export function runProgram(path: string, args: string[] = [], options: { env?: Record<string, string>; timeoutMs?: number } = {}): RunResult {
  const r = spawnSync(path, args, {
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    timeout: options.timeoutMs ?? 30_000,
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** One line the `trace` entry wrote: `[libos] <nr> <name>(<a1>, <a2>, <a3>) = <result>`. */
export interface TraceLine {
  nr: number;
  name: string;
  args: string[];
  result: string;
}

const TRACE_LINE = /^\[libos\] (\d+) ([a-z0-9_?]+)\(([^)]*)\) = (\S+)$/;

/** The trace lines of a run's stderr; every line that starts with `[libos] ` must parse. */
export function traceLines(stderr: string): TraceLine[] {
  const lines: TraceLine[] = [];
  for (const text of stderr.split('\n')) {
    if (!text.startsWith('[libos] ')) continue;
    const m = TRACE_LINE.exec(text);
    if (m === null) throw new Error(`malformed trace line: ${JSON.stringify(text)}`);
    lines.push({ nr: Number(m[1]), name: m[2]!, args: m[3]!.split(', '), result: m[4]! });
  }
  return lines;
}

/** Counts per syscall name, keys sorted. */
export function countByName(names: Iterable<string>): Record<string, number> {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return Object.fromEntries([...counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The trace lines' counts per name. */
export function traceCounts(stderr: string): Record<string, number> {
  return countByName(traceLines(stderr).map((l) => l.name));
}

/**
 * strace's counts per name of the calls `names` made by a run (every process, -f), with the run's
 * own status. Lines strace splits around a signal (`<unfinished ...>` / `resumed>`) count once.
 */
export function straceCounts(path: string, args: string[], names: readonly string[], env: Record<string, string> = {}): { counts: Record<string, number>; status: number | null; stdout: string } {
  const dir = freshDir('strace');
  const log = join(dir, 'strace.log');
  const r = spawnSync('strace', ['-f', '-qq', '-o', log, '-e', `trace=${names.join(',')}`, '--', path, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
    maxBuffer: 512 * 1024 * 1024,
  });
  const seen: string[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /^(?:\d+\s+)?([a-z0-9_]+)\(/.exec(line);
    if (m !== null) seen.push(m[1]!);
  }
  return { counts: countByName(seen), status: r.status, stdout: r.stdout ?? '' };
}

/** Keeps only the keys of `counts` in `names`. */
export function only(counts: Record<string, number>, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([k]) => names.includes(k)));
}

/** A call a fixture program is known to make: from which function, which syscall, how often. */
export interface KnownCall {
  /** The enclosing function's symbol (a `.constprop.N`-style suffix is ignored). */
  fn: string;
  name: string;
  nr: number;
  times: number;
}

/**
 * The trace counts a rewritten program must show: each known call counts when the site that makes
 * it (same function, same number, or a number the planner could not see) was patched.
 */
export function expectedTraceCounts(rw: Rewritten, calls: readonly KnownCall[], symbolsFrom?: string): Record<string, number> {
  // A stripped file names no function: take the names from the unstripped file it came from.
  const named = symbolsFrom === undefined ? undefined : readElf(readFileSync(symbolsFrom)).functions().filter((f) => f.name !== undefined);
  const nameAt = (va: bigint): string | undefined => named?.find((f) => f.start <= va && va < f.end)?.name;
  const patched = rw.plan.patches.map((p) => ({
    fn: baseName(named === undefined ? rw.sites[p.site]?.symbol : nameAt(p.va)),
    nr: p.syscallNr ?? rw.sites[p.site]?.syscallNr,
  }));
  const names: string[] = [];
  for (const c of calls) {
    if (patched.some((p) => p.fn === c.fn && (p.nr === undefined || p.nr === c.nr))) {
      for (let i = 0; i < c.times; i++) names.push(c.name);
    }
  }
  return countByName(names);
}

function baseName(symbol: string | undefined): string | undefined {
  return symbol?.replace(/\.(constprop|isra|part|cold)\.\d+$/, '');
}
