/**
 * Interception cost: nanoseconds per call of a cheap system call (getppid) in a tight loop, for the
 * native call, for small programs rewritten by libos-patch with each stub variant and relaxation
 * level (hook-only entries and passthrough), and for the other ways a library OS can catch a system
 * call (zpoline's `call *%rax` through page 0, Syscall User Dispatch, seccomp RET_TRAP, int3,
 * ptrace). Every program is a small C file under `bench/c/`, built here with gcc -O2.
 *
 * Each program times its own loop and prints CPU time (user + system) and wall time per call; the
 * loop count is calibrated so a run takes about 0.25 s of wall time. All programs run once per
 * round, for seven rounds, so slow drifts of the machine's load hit every method alike; figures are
 * medians of the seven. CPU time is the headline: on a shared machine the wall time also counts the
 * time other processes held the CPU. Ratios are within this run.
 *
 * Run alone: `node --conditions=libos-source --import tsx packages/recipe/bench/intercept.bench.ts`;
 * the root `npm run bench` imports it and calls {@link run} (and {@link targets}).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readElf } from '@libos/elfkit';
import { findSites, loadRecipe, parseRecipe, planPatches, rewriteElf, type Entry, type Recipe } from '@libos/recipe';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCES = join(HERE, 'c');
const INCLUDE = join(HERE, '../../../fixtures/include');
const ROUNDS = 7;
/** Wall time a calibrated run aims at. */
const TARGET_RUN_NS = 0.25e9;
const HOOK: Entry = { kind: 'symbol', name: 'bench_hook' };
const OPAQUE_HOOK: Entry = { kind: 'symbol', name: 'bench_hook_opaque' };
const PASS: Entry = { kind: 'passthrough' };

/** How a method answered the call. */
export type InterceptEntry = 'native' | 'hook-only (asm)' | 'hook-only (C handler)' | 'passthrough';

/** One method's figures (ns per call). */
export interface InterceptResult {
  readonly name: string;
  readonly unit: 'ns/call';
  /** Short label for tables and the chart. */
  readonly label: string;
  readonly group: 'native' | 'libos-patch' | 'other';
  readonly entry: InterceptEntry;
  /** CPU time per call (user + system), one per round. */
  readonly runs: number[];
  readonly median: number;
  /** Wall time per call, one per round. */
  readonly wall: { readonly runs: number[]; readonly median: number };
  /** median / the native call's median, in this run. */
  readonly xNative?: number;
  /** median / the seed stub's hook-only median, in this run. */
  readonly xSeed?: number;
  readonly iterations: number;
  /** What the program is, and what the plan did (variants, relaxations). */
  readonly detail: string;
  /** Set when the method could not run on this machine (then runs is empty). */
  readonly skipped?: string;
}

/** A program to time: a built binary, its arguments, and the result it must print. */
interface Program {
  key: string;
  label: string;
  group: InterceptResult['group'];
  entry: InterceptEntry;
  path: string;
  args: string[];
  expect: number;
  detail: string;
  skipped?: string;
  iterations: number;
  cpu: number[];
  wall: number[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function gcc(out: string, source: string, flags: string[]): string {
  execFileSync('gcc', ['-O2', '-Wall', '-I', INCLUDE, ...flags, '-o', out, join(SOURCES, source)], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

function builtin(name: string): Recipe {
  const { recipe, errors } = loadRecipe(name);
  if (recipe === undefined) throw new Error(`recipe ${name}: ${errors.map(String).join('; ')}`);
  return recipe;
}

/** Rewrites `input` with `recipe` and `entry`; returns the output path and what the plan did. */
async function rewrite(input: string, output: string, recipe: Recipe, entry: Entry): Promise<{ path: string; detail: string }> {
  const elf = readElf(readFileSync(input));
  const report = findSites(elf, recipe.match);
  const { plan } = await planPatches(elf, recipe, report.sites, { entry });
  if (plan.stats.patched === 0) throw new Error(`${recipe.name}: no site patched in ${input}`);
  writeFileSync(output, rewriteElf(elf, plan));
  chmodSync(output, 0o755);
  const variants = Object.entries(plan.stats.byVariant).map(([v, n]) => `${v} ${n}`).join(', ');
  const relax = Object.entries(plan.stats.relaxations).map(([r, n]) => `${r} ${n}`).join(', ');
  const r11 = plan.patches.filter((p) => p.reason.includes('r11 not set')).length;
  const saved = [relax, r11 > 0 ? `r11 not set (never read after the site) ${r11}` : '', plan.entryAnalysis ?? ''].filter((x) => x !== '').join('; ');
  return { path: output, detail: `recipe ${recipe.name}: ${variants}${saved ? `; ${saved}` : ''}` };
}

interface Sample { cpu: number; wall: number; result: number; elapsedNs: number }

/** Runs a program once with n iterations. Exit 77 means the method is unavailable here. */
function runOnce(p: Program, n: number): Promise<Sample | { skipped: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    execFile(p.path, [String(n), ...p.args], { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      const elapsedNs = Number(process.hrtime.bigint() - t0);
      if (error !== null) {
        if (error.code === 77) { resolve({ skipped: stderr.trim() }); return; }
        reject(new Error(`${p.label}: ${p.path} ${n} failed (${error.code ?? error.signal}): ${stderr.trim()}`));
        return;
      }
      const [cpu, wall, result] = stdout.trim().split(/\s+/).map(Number);
      if (result !== p.expect) { reject(new Error(`${p.label}: answered ${result}, expected ${p.expect}`)); return; }
      resolve({ cpu: cpu!, wall: wall!, result: result!, elapsedNs });
    });
  });
}

/** Picks the loop count for a run of about TARGET_RUN_NS wall time. */
async function calibrate(p: Program): Promise<void> {
  let n = 2000;
  for (let step = 0; step < 4; step++) {
    const s = await runOnce(p, n);
    if ('skipped' in s) { p.skipped = s.skipped; return; }
    const loopNs = s.wall * n;
    if (loopNs > 30e6 || step === 3) {
      p.iterations = Math.max(1000, Math.round(TARGET_RUN_NS / s.wall));
      return;
    }
    n = Math.round(n * Math.min(1000, 40e6 / Math.max(loopNs, 1e4)));
  }
}

/** Builds and rewrites every program, in `dir`. */
async function preparePrograms(dir: string): Promise<Program[]> {
  const at = (name: string): string => join(dir, name);
  const annotated = gcc(at('annotated'), 'annotated-loop.c', ['-DLIBOS_ANNOTATION_PCREL']);
  const annotatedNr = gcc(at('annotated-nr'), 'annotated-loop.c', ['-DLIBOS_ANNOTATION_PCREL', '-DBENCH_NR_AT_SITE']);
  const annotatedNoPie = gcc(at('annotated-nopie'), 'annotated-loop.c', ['-DLIBOS_ANNOTATION_PCREL', '-no-pie']);
  const plain = gcc(at('plain'), 'plain-loop.c', []);
  const sud = gcc(at('sud'), 'sud.c', []);
  const seccomp = gcc(at('seccomp'), 'seccomp.c', []);
  const int3 = gcc(at('int3'), 'int3.c', []);
  const ptrace = gcc(at('ptrace'), 'ptrace.c', []);
  const zpoline = gcc(at('zpoline'), 'zpoline.c', ['-mno-red-zone']);
  const callRet = gcc(at('call-ret'), 'call-ret-loop.c', ['-mno-red-zone']);

  // flags clobbered everywhere and the red zone not stepped over: the cheapest stub the recipe
  // language allows for an asm entry (a recipe of our own, extending glibc-rfc).
  const recipeFile = at('bench-clobber-unused.yaml');
  const text = 'name: bench-clobber-unused\nextends: glibc-rfc\nabi: { flags: clobber, red-zone: unused }\n';
  writeFileSync(recipeFile, text);
  const parsed = parseRecipe(text, recipeFile);
  if (parsed.recipe === undefined) throw new Error(parsed.errors.map(String).join('; '));
  const fast = builtin('glibc-rfc');
  const exactText = 'name: bench-r11-exact\nextends: glibc-rfc\nabi: { rcx-r11: exact }\n';
  const exactParsed = parseRecipe(exactText, at('bench-r11-exact.yaml'));
  if (exactParsed.recipe === undefined) throw new Error(exactParsed.errors.map(String).join('; '));
  const exact = exactParsed.recipe;

  const pid = process.pid;
  const programs: Program[] = [];
  const add = (key: string, label: string, group: Program['group'], entry: InterceptEntry, path: string, detail: string, args: string[] = [], expect = pid): void => {
    programs.push({ key, label, group, entry, path, args, expect, detail, iterations: 0, cpu: [], wall: [] });
  };

  add('native', 'native syscall', 'native', 'native', annotated, 'getppid through an annotated site (syscall + 10 NOPs), unpatched');
  add('native-plain', 'native syscall (plain mov+syscall)', 'native', 'native', plain, 'getppid as `mov $110,%eax; syscall`, unpatched');
  add('native-call-ret', 'native syscall inside call/ret (control)', 'native', 'native', callRet, 'control: `call f; f: syscall; ret`, no interception: what a `ret` right after a system call costs on this CPU');

  const variants: { key: string; label: string; input: string; recipe: Recipe; note?: string; hookOnly?: boolean }[] = [
    { key: 'fast', label: 'glibc-rfc (fast stub)', input: annotated, recipe: fast, note: 'number in rax only at run time (`mov %rsi,%rax`): the site\'s trampoline checks it against the native calls first' },
    { key: 'fast-nr', label: 'glibc-rfc (fast stub), nr known', input: annotatedNr, recipe: fast, note: '`mov $110,%eax` right before the site: the site jumps straight to the stub' },
    { key: 'seed', label: 'seed stub', input: annotated, recipe: builtin('glibc-rfc-seed-stub') },
    { key: 'seed-nr', label: 'seed stub, nr known', input: annotatedNr, recipe: builtin('glibc-rfc-seed-stub'), hookOnly: true },
    { key: 'relaxed', label: 'relaxed flags', input: annotated, recipe: builtin('glibc-rfc-relaxed') },
    { key: 'clobber-unused', label: 'flags clobber + red zone unused', input: annotated, recipe: parsed.recipe },
    { key: 'abs64', label: 'abs64 (non-PIE)', input: annotatedNoPie, recipe: builtin('glibc-rfc-abs64'), note: 'non-PIE build' },
    { key: 'displace', label: 'displace (unannotated)', input: plain, recipe: builtin('unannotated'), note: 'plain `mov $110,%eax; syscall`' },
    { key: 'trap', label: 'trap-only (ud2 + SIGILL)', input: annotated, recipe: builtin('trap-only') },
  ];
  for (const v of variants) {
    for (const [suffix, entry, kind] of [['hook', HOOK, 'hook-only (asm)'], ['pass', PASS, 'passthrough']] as const) {
      if (suffix === 'pass' && v.hookOnly === true) continue;
      const r = await rewrite(v.input, at(`${v.key}-${suffix}`), v.recipe, entry);
      const how = entry.kind === 'symbol' ? 'entry symbol bench_hook (asm, cached answer)' : 'entry passthrough';
      add(`${v.key}-${suffix}`, `${v.label}, ${suffix === 'hook' ? 'hook-only' : 'passthrough'}`, 'libos-patch', kind, r.path, `${r.detail}; ${how}${v.note ? `; ${v.note}` : ''}`);
    }
    if (v.key === 'fast' || v.key === 'fast-nr') {
      const r = await rewrite(v.input, at(`${v.key}-c`), fast, { kind: 'handler', source: join(SOURCES, 'handler.c') });
      add(`${v.key}-c`, `${v.label}, C handler`, 'libos-patch', 'hook-only (C handler)', r.path, `${r.detail}; entry handler bench/c/handler.c (returns 4242 for getppid); ${v.note}`, [], 4242);
      const o = await rewrite(v.input, at(`${v.key}-opaque`), fast, OPAQUE_HOOK);
      add(`${v.key}-opaque`, `${v.label}, hook-only, entry called`, 'libos-patch', 'hook-only (asm)', o.path, `${o.detail}; entry symbol bench_hook_opaque (a frame and a branch: called, every register the hook may change saved); ${v.note}`);
      const e = await rewrite(v.input, at(`${v.key}-exact`), exact, HOOK);
      add(`${v.key}-exact`, `${v.label}, hook-only, r11 always set`, 'libos-patch', 'hook-only (asm)', e.path, `${e.detail}; entry symbol bench_hook; rcx-r11: exact (r11 = rflags even where nothing reads it: one pushfq); ${v.note}`);
    }
  }

  const minAddr = readFileSync('/proc/sys/vm/mmap_min_addr', 'utf8').trim();
  const zpNote = `page 0 mapped (vm.mmap_min_addr = ${minAddr}${minAddr !== '0' ? ', allowed by CAP_SYS_RAWIO' : ''}); 512-byte NOP sled`;
  add('zpoline-hook', 'zpoline, hook-only', 'other', 'hook-only (asm)', zpoline, `\`call *%rax\` into ${zpNote}; hook answers from a cache`, ['cached']);
  add('zpoline-pass', 'zpoline, passthrough', 'other', 'passthrough', zpoline, `\`call *%rax\` into ${zpNote}; hook makes the call`, ['pass']);
  add('sud', 'Syscall User Dispatch (SIGSYS)', 'other', 'hook-only (asm)', sud, 'prctl PR_SET_SYSCALL_USER_DISPATCH, selector BLOCK; SIGSYS handler writes rax');
  add('seccomp', 'seccomp RET_TRAP (SIGSYS)', 'other', 'hook-only (asm)', seccomp, 'BPF filter: getppid -> SECCOMP_RET_TRAP; SIGSYS handler writes rax');
  add('int3', 'int3 (SIGTRAP)', 'other', 'hook-only (asm)', int3, '`mov $110,%eax; int3`; SIGTRAP handler writes rax');
  add('ptrace', 'ptrace SYSEMU (one CPU)', 'other', 'hook-only (asm)', ptrace, 'PTRACE_SYSEMU tracer writes rax; tracer and tracee pinned to one CPU; CPU figure = tracer + tracee');
  return programs;
}

/** Runs the interception benchmark: one result per method, native first. */
export async function run(): Promise<InterceptResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'libos-intercept-'));
  try {
    const programs = await preparePrograms(dir);
    for (const p of programs) await calibrate(p);
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of programs) {
        if (p.skipped !== undefined) continue;
        const s = await runOnce(p, p.iterations);
        if ('skipped' in s) { p.skipped = s.skipped; continue; }
        p.cpu.push(s.cpu);
        p.wall.push(s.wall);
      }
    }
    const native = median(programs.find((p) => p.key === 'native')!.cpu);
    const seed = median(programs.find((p) => p.key === 'seed-hook')!.cpu);
    return programs.map((p): InterceptResult => {
      const base = {
        name: `intercept: ${p.label}`,
        unit: 'ns/call' as const,
        label: p.label,
        group: p.group,
        entry: p.entry,
        iterations: p.iterations,
        detail: p.detail,
      };
      if (p.skipped !== undefined || p.cpu.length === 0) {
        return { ...base, runs: [], median: Number.NaN, wall: { runs: [], median: Number.NaN }, skipped: p.skipped ?? 'no run' };
      }
      const m = median(p.cpu);
      return { ...base, runs: p.cpu, median: m, wall: { runs: p.wall, median: median(p.wall) }, xNative: m / native, xSeed: m / seed };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One target of the issue, checked against this run's figures. */
export interface TargetCheck {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

/**
 * a / b as the median of the per-round ratios a.runs[i] / b.runs[i]. Every round runs each program
 * once, seconds apart, so a ratio within a round cancels the machine's slow drifts (this VM's
 * speed changes by tens of percent over minutes), which a ratio of the two medians does not.
 * The ratio of the medians when the rounds do not pair up.
 */
export function pairedRatio(a: InterceptResult, b: InterceptResult): number {
  if (a.runs.length !== b.runs.length || a.runs.length === 0) return a.median / b.median;
  return median(a.runs.map((x, i) => x / (b.runs[i] as number)));
}

/** The issue's targets for the interception cost, checked against {@link run}'s results. */
export function targets(results: readonly InterceptResult[]): TargetCheck[] {
  const get = (label: string): InterceptResult | undefined => results.find((r) => r.label === label && r.skipped === undefined);
  const sud = get('Syscall User Dispatch (SIGSYS)');
  const native = get('native syscall');
  const out: TargetCheck[] = [];
  const ns = (r: InterceptResult): string => `${r.median.toFixed(2)} ns`;
  for (const [prefix, seedLabel, where] of [
    ['glibc-rfc (fast stub)', 'seed stub, hook-only', 'number known at run time only'],
    ['glibc-rfc (fast stub), nr known', 'seed stub, nr known, hook-only', 'number known at the site'],
  ] as const) {
    const seed = get(seedLabel);
    const hook = get(`${prefix}, hook-only`);
    const cHandler = get(`${prefix}, C handler`);
    const pass = get(`${prefix}, passthrough`);
    if (hook) out.push({ goal: `default stub, hook-only asm entry: at most 2 ns a call (${where})`, measured: ns(hook), met: hook.median <= 2 });
    if (cHandler) out.push({ goal: `default stub, C handler: at most 3.5 ns a call (${where})`, measured: ns(cHandler), met: cHandler.median <= 3.5 });
    const paired = (a: InterceptResult, b: InterceptResult, digits: number): { ratio: number; text: string } => {
      const ratio = pairedRatio(a, b);
      return { ratio, text: `${ratio.toFixed(digits)}x, median of the rounds' ratios (medians ${ns(a)} / ${ns(b)})` };
    };
    if (hook && seed) {
      const r = paired(seed, hook, 1);
      out.push({ goal: `default stub at least 10x cheaper than the seed stub, hook-only, same run (${where})`, measured: r.text, met: r.ratio >= 10 });
    }
    if (hook && sud) {
      const r = paired(sud, hook, 0);
      out.push({ goal: `default stub over 200x cheaper than Syscall User Dispatch (${where})`, measured: r.text, met: r.ratio > 200 });
    }
    const called = get(`${prefix}, hook-only, entry called`);
    if (called) out.push({ goal: `(ours, stricter than the issue) default stub, hook-only asm entry that is called, not copied: at most 2 ns a call (${where})`, measured: ns(called), met: called.median <= 2 });
    if (pass && native) {
      const r = paired(pass, native, 3);
      out.push({ goal: `default stub, passthrough: at most 1.15x native (${where})`, measured: r.text, met: r.ratio <= 1.15 });
    }
  }
  return out;
}

function print(results: readonly InterceptResult[]): void {
  for (const r of results) {
    if (r.skipped !== undefined) { console.log(`${r.label}: skipped (${r.skipped})`); continue; }
    console.log(`${r.label}: ${r.median.toFixed(2)} ns/call CPU, ${r.wall.median.toFixed(2)} wall (x native ${r.xNative!.toFixed(3)}, x seed ${r.xSeed!.toFixed(3)}; n=${r.iterations})`);
  }
  for (const t of targets(results)) console.log(`${t.met ? 'met    ' : 'NOT met'} ${t.goal}: ${t.measured}`);
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  print(await run());
}
