/**
 * Rewriting cost: readElf + findSites + planPatches + rewriteElf + write, with the `unannotated`
 * recipe (every decoded `syscall`), over the system's libc.so.6, /bin/busybox and the node
 * executable, beside `objdump -d` over the same file in the same run.
 *
 * Three figures per file:
 *  - the command: the built CLI run the way a user runs it, as a command (the file npm links as
 *    `libos-patch`, run through its first line, which starts node on it):
 *    `packages/cli/bin/libos-patch.js apply --recipe unannotated FILE -o OUT`; the wall time of the
 *    whole command (Node's start, loading the CLI, the work, writing) and its peak memory (max RSS).
 *    Beside it, fewer runs of `node packages/cli/bin/libos-patch.js ...`, node started directly in
 *    this environment (NODE_EXTRA_CA_CERTS included, which the command drops);
 *  - cold: a fresh process that does the rewrite once through the library API, from the sources,
 *    spawned under `/usr/bin/time -v` for its peak memory; the time is measured inside the process
 *    around the work (module loading through tsx and Node's start are given apart, as the process's
 *    wall time). Like the CLI, it runs iced-x86's wasm on V8's baseline compiler (`--liftoff-only`);
 *  - warm: the same work repeated in this process after a first run (a tool that rewrites many
 *    files, or a long-lived service), the JIT warmed up.
 * objdump runs under the same `/usr/bin/time -v`, output to /dev/null. Medians of several runs;
 * objdump on node takes seconds, so it runs once there.
 *
 * Run alone: `node --conditions=libos-source --import tsx packages/recipe/bench/rewrite.bench.ts`;
 * the root `npm run bench` imports it and calls {@link run} (and {@link targets}). The command's
 * figures need the build: the suite runs `npm run build` first when it is older than the sources.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readElf } from '@libos/elfkit';
import { findSites, loadRecipe, planPatches, rewriteElf } from '@libos/recipe';

const SELF = fileURLToPath(import.meta.url);
const TIME = '/usr/bin/time';
const ROOT = join(dirname(SELF), '..', '..', '..');
/** The built command, as npm links it. */
const CLI_BIN = join(ROOT, 'packages', 'cli', 'bin', 'libos-patch.js');

/** What one rewrite did and how long each stage took (ms). */
interface RewriteTiming {
  readMs: number;
  findMs: number;
  planMs: number;
  rewriteMs: number;
  writeMs: number;
  totalMs: number;
  sites: number;
  patched: number;
  refused: number;
  byVariant: string;
  bytesIn: number;
  bytesOut: number;
}

/** The work itself: read, find, plan, rewrite, write. */
async function rewriteOnce(input: string, output: string): Promise<RewriteTiming> {
  const t0 = performance.now();
  const { recipe, errors } = loadRecipe('unannotated');
  if (recipe === undefined) throw new Error(errors.map(String).join('; '));
  const bytes = readFileSync(input);
  const elf = readElf(bytes);
  const t1 = performance.now();
  const report = findSites(elf, recipe.match);
  const t2 = performance.now();
  const { plan } = await planPatches(elf, recipe, report.sites);
  const t3 = performance.now();
  const out = rewriteElf(elf, plan);
  const t4 = performance.now();
  writeFileSync(output, out);
  const t5 = performance.now();
  return {
    readMs: t1 - t0, findMs: t2 - t1, planMs: t3 - t2, rewriteMs: t4 - t3, writeMs: t5 - t4, totalMs: t5 - t0,
    sites: report.sites.length, patched: plan.stats.patched, refused: plan.stats.refused,
    byVariant: Object.entries(plan.stats.byVariant).map(([v, n]) => `${v} ${n}`).join(', ') || 'none',
    bytesIn: bytes.length, bytesOut: out.length,
  };
}

/** One rewrite measured in a fresh process and by this process. */
export interface RewriteResult {
  readonly name: string;
  readonly unit: 'ms';
  readonly label: string;
  /** Cold: in-process time of the work in a fresh process, one per run. */
  readonly runs: number[];
  readonly median: number;
  readonly baseline?: { readonly name: string; readonly runs: number[]; readonly median: number; readonly peakRssMb?: number };
  /** median / baseline.median. */
  readonly ratio?: number;
  /** Wall time of the whole fresh process (Node's start, module loading, the work). */
  readonly process: { readonly runs: number[]; readonly median: number };
  /**
   * The built `libos-patch apply` in a fresh `node`, as a user runs it: wall time of the whole
   * command (ms) and its peak memory (max RSS, MB), medians.
   */
  /** `stages`: the medians of its --timings line (`Node's start 55, loading the CLI 14, loading the command 40, reading 5, ..., total 250 ms`). */
  /**
   * `node`: `node -e 0` run right before each command, in the same round; `overNode`: the median of
   * the rounds' differences, the command's time above Node's own start and exit.
   */
  readonly cli: { readonly runs: number[]; readonly median: number; readonly peakRssMb: number; readonly stages: string; readonly node: number; readonly overNode: number };
  /** `node packages/cli/bin/libos-patch.js apply ...`, node started directly in this environment: wall time, ms. */
  readonly direct: { readonly runs: number[]; readonly median: number };
  /** Peak memory of the fresh process (max RSS, MB), median. */
  readonly peakRssMb: number;
  /** Warm: the work repeated in a process that has done it before. */
  readonly warm: { readonly runs: number[]; readonly median: number; readonly stages: string };
  readonly sites: number;
  /** Sites per second, warm. */
  readonly sitesPerSecond: number;
  readonly detail: string;
}

/** A fresh process's figures: wall and peak RSS from /usr/bin/time, and what it printed. */
interface Spawned { wallMs: number; rssKb: number | undefined; stdout: string; stderr: string }

/**
 * The environment the command's node runs in (the bin's first line drops NODE_EXTRA_CA_CERTS: see
 * packages/cli/README.md): `node -e 0` measured in it is the floor under the command.
 */
const COMMAND_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS'));
// The bin's first line runs the `node` found on PATH: this one, as the floor and the direct runs do.
COMMAND_ENV.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;

function spawnTimed(command: string, args: string[], stdoutToNull: boolean, env: NodeJS.ProcessEnv = process.env): Promise<Spawned> {
  const useTime = existsSync(TIME);
  const [cmd, argv] = useTime ? [TIME, ['-v', command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { stdio: ['ignore', stdoutToNull ? 'ignore' : 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('exit', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) { reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.slice(-400)}`)); return; }
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ wallMs, rssKb: rss ? Number(rss[1]) : undefined, stdout, stderr });
    });
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// --liftoff-only and the interrupt budget: what bin/libos-patch.js sets (TurboFan's compiles, of
// iced-x86's wasm and of our hot functions, cost a one-shot rewrite more than they save).
const NODE_ARGS = ['--liftoff-only', '--interrupt-budget=600000', '--conditions=libos-source', '--import', 'tsx', SELF];

/** Rewrites in a fresh process; returns its figures (peak RSS from /usr/bin/time, or the child's own maxRSS). */
async function coldRewrite(input: string, output: string): Promise<{ timing: RewriteTiming; wallMs: number; rssKb: number }> {
  const s = await spawnTimed(process.execPath, [...NODE_ARGS, '--child', input, output], false);
  const line = JSON.parse(s.stdout.trim().split('\n').pop()!) as { timing: RewriteTiming; maxRssKb: number };
  return { timing: line.timing, wallMs: s.wallMs, rssKb: s.rssKb ?? line.maxRssKb };
}

/**
 * `libos-patch apply` as a user runs it: the built CLI run as a command (or, `direct`, as
 * `node bin/libos-patch.js` in this environment), timed as a whole, with what its `--timings` line
 * says: Node's start, loading the CLI and the command, and each stage.
 */
async function cliRewrite(input: string, output: string, direct = false): Promise<{ wallMs: number; rssKb: number; stages: Map<string, number> }> {
  const args = ['apply', '--recipe', 'unannotated', input, '-o', output, '--timings'];
  const s = await (direct ? spawnTimed(process.execPath, [CLI_BIN, ...args], true) : spawnTimed(CLI_BIN, args, true, COMMAND_ENV));
  const line = s.stderr.split('\n').find((l) => l.startsWith('libos-patch: timings: ')) ?? '';
  const stages = new Map<string, number>();
  for (const part of line.slice('libos-patch: timings: '.length).split(', ')) {
    const m = /^(.*) (\d+) ms$/.exec(part);
    if (m !== null) stages.set(m[1]!.replace(/^planning \d+ sites$/, 'planning').replace(/ \(.*\)$/, ''), Number(m[2]));
  }
  return { wallMs: s.wallMs, rssKb: s.rssKb ?? 0, stages };
}

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** Builds the packages (`npm run build`) unless the CLI's bundle, what the bin runs, is newer than every source. */
function ensureBuilt(): void {
  const bundle = join(ROOT, 'packages', 'cli', 'dist', 'cli-bundle.js');
  const built = existsSync(bundle) ? statSync(bundle).mtimeMs : -Infinity;
  const stale = ['elfkit', 'encoder', 'recipe', 'cli'].some((p) => newestMtime(join(ROOT, 'packages', p, 'src')) > built);
  if (!stale) return;
  const run = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`npm run build failed: ${`${run.stdout}${run.stderr}`.slice(-600)}`);
}

interface Target { label: string; path: string; cli: number; direct: number; cold: number; warm: number; objdump: number }

const TARGETS: Target[] = [
  // Twenty-one whole-command runs: this VM's runs of one command spread over 60 ms in a noisy
  // minute (172-239 ms), and the median of eleven moved by 25 ms between two runs of the bench.
  { label: 'libc.so.6', path: '/lib/x86_64-linux-gnu/libc.so.6', cli: 21, direct: 5, cold: 3, warm: 9, objdump: 3 },
  { label: 'busybox', path: '/bin/busybox', cli: 21, direct: 5, cold: 3, warm: 9, objdump: 3 },
  { label: 'node', path: process.execPath, cli: 3, direct: 2, cold: 2, warm: 2, objdump: 1 },
];

/**
 * The fresh process with nothing to do (modules loaded, no file read): its wall time and RSS; and
 * the floors of the whole command: `node -e 0` in the command's environment and `libos-patch
 * --version` run as a command (Node's start, then the CLI loaded too); and `node -e 0` in this
 * environment as it is (`nodeHereMs`, NODE_EXTRA_CA_CERTS included when set).
 */
export interface ProcessFloor { readonly wallMs: number; readonly peakRssMb: number; readonly nodeMs: number; readonly cliVersionMs: number; readonly nodeHereMs: number; readonly extraCaCerts: boolean }
let floor: ProcessFloor | undefined;

/** Node's start and module loading alone, measured by the last {@link run}. */
export function processFloor(): ProcessFloor | undefined { return floor; }

/** Runs the rewrite benchmark: one result per binary that exists on this machine. */
export async function run(): Promise<RewriteResult[]> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'libos-rewrite-'));
  try {
    const idle: Spawned[] = [];
    for (let i = 0; i < 2; i++) idle.push(await spawnTimed(process.execPath, [...NODE_ARGS, '--idle'], false));
    const bare: Spawned[] = [];
    const here: Spawned[] = [];
    const version: Spawned[] = [];
    for (let i = 0; i < 7; i++) {
      bare.push(await spawnTimed(process.execPath, ['-e', '0'], true, COMMAND_ENV));
      here.push(await spawnTimed(process.execPath, ['-e', '0'], true));
      version.push(await spawnTimed(CLI_BIN, ['--version'], true, COMMAND_ENV));
    }
    floor = {
      wallMs: median(idle.map((s) => s.wallMs)), peakRssMb: median(idle.map((s) => s.rssKb ?? 0)) / 1024,
      nodeMs: median(bare.map((s) => s.wallMs)), cliVersionMs: median(version.map((s) => s.wallMs)),
      nodeHereMs: median(here.map((s) => s.wallMs)), extraCaCerts: process.env.NODE_EXTRA_CA_CERTS !== undefined,
    };

    const results: RewriteResult[] = [];
    for (const t of TARGETS) {
      if (!existsSync(t.path)) continue;
      const out = join(dir, `${t.label}.patched`);
      const cold: { timing: RewriteTiming; wallMs: number; rssKb: number }[] = [];
      const cli: { wallMs: number; rssKb: number; stages: Map<string, number>; nodeMs: number }[] = [];
      const direct: number[] = [];
      const objdump: Spawned[] = [];
      // Interleaved so a change in the machine's load hits all of them.
      for (let i = 0; i < Math.max(t.cli, t.cold, t.objdump); i++) {
        if (i < t.cli) {
          // Node's own start and exit, seconds before the command: the floor under it in this round.
          const nodeMs = (await spawnTimed(process.execPath, ['-e', '0'], true, COMMAND_ENV)).wallMs;
          cli.push({ ...(await cliRewrite(t.path, out)), nodeMs });
        }
        if (i < t.direct) direct.push((await cliRewrite(t.path, out, true)).wallMs);
        if (i < t.cold) cold.push(await coldRewrite(t.path, out));
        if (i < t.objdump) objdump.push(await spawnTimed('objdump', ['-d', t.path], true));
      }
      await rewriteOnce(t.path, out); // warm-up
      const warm: RewriteTiming[] = [];
      for (let i = 0; i < t.warm; i++) warm.push(await rewriteOnce(t.path, out));
      rmSync(out, { force: true });

      const c = cold[0]!.timing;
      const coldRuns = cold.map((r) => r.timing.totalMs);
      const warmRuns = warm.map((r) => r.totalMs);
      const m = median(coldRuns);
      const wm = median(warmRuns);
      const b = median(objdump.map((s) => s.wallMs));
      const stage = (k: keyof RewriteTiming): string => (median(warm.map((r) => r[k] as number))).toFixed(0);
      const objRss = objdump.every((s) => s.rssKb !== undefined) ? median(objdump.map((s) => s.rssKb!)) / 1024 : undefined;
      results.push({
        name: `recipe: rewrite every syscall site (unannotated) of ${t.label}, fresh process`,
        unit: 'ms',
        label: t.label,
        runs: coldRuns,
        median: m,
        baseline: { name: `objdump -d ${t.label}`, runs: objdump.map((s) => s.wallMs), median: b, ...(objRss !== undefined ? { peakRssMb: objRss } : {}) },
        ratio: m / b,
        process: { runs: cold.map((r) => r.wallMs), median: median(cold.map((r) => r.wallMs)) },
        cli: {
          runs: cli.map((r) => r.wallMs), median: median(cli.map((r) => r.wallMs)), peakRssMb: median(cli.map((r) => r.rssKb)) / 1024,
          stages: [...(cli[0]?.stages.keys() ?? [])].map((k) => `${k} ${median(cli.map((r) => r.stages.get(k) ?? 0)).toFixed(0)}`).join(', ') + ' ms',
          node: median(cli.map((r) => r.nodeMs)),
          overNode: median(cli.map((r) => r.wallMs - r.nodeMs)),
        },
        direct: { runs: direct, median: median(direct) },
        peakRssMb: median(cold.map((r) => r.rssKb)) / 1024,
        warm: { runs: warmRuns, median: wm, stages: `read ${stage('readMs')}, find ${stage('findMs')}, plan ${stage('planMs')}, rewrite ${stage('rewriteMs')}, write ${stage('writeMs')} ms` },
        sites: c.sites,
        sitesPerSecond: c.sites / (wm / 1000),
        detail: `${(c.bytesIn / 1e6).toFixed(1)} MB in, ${(c.bytesOut / 1e6).toFixed(1)} MB out; ${c.sites} sites, ${c.patched} patched (${c.byVariant}), ${c.refused} refused`,
      });
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One target of the issue, checked against this run's figures. */
export interface TargetCheck { readonly goal: string; readonly measured: string; readonly met: boolean }

/** The issue's targets for the rewriting cost, checked against {@link run}'s results. */
export function targets(results: readonly RewriteResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  // The fresh process runs the library from its TypeScript sources (tsx compiles them as it loads):
  // its whole run says little of the built command, which has rows of its own.
  const both = (r: RewriteResult): string => `warm ${r.warm.median.toFixed(0)} ms, fresh process ${r.median.toFixed(0)} ms (its whole run, from the TypeScript sources under tsx: ${r.process.median.toFixed(0)} ms)`;
  const node = results.find((r) => r.label === 'node');
  if (node) {
    out.push({ goal: 'node analysed and rewritten in under a second (warm)', measured: both(node), met: node.warm.median < 1000 });
    out.push({ goal: 'node analysed and rewritten in under a second (fresh process, work only)', measured: both(node), met: node.median < 1000 });
    out.push({ goal: 'node: `libos-patch apply` run as a command, the whole command, in under a second', measured: `${node.cli.median.toFixed(0)} ms, ${node.cli.peakRssMb.toFixed(0)} MB (runs ${node.cli.runs.map((x) => x.toFixed(0)).join(', ')})`, met: node.cli.median < 1000 });
    out.push({ goal: 'node: `libos-patch apply`, the whole command, at least 5x faster than objdump -d', measured: `${(node.baseline!.median / node.cli.median).toFixed(1)}x (objdump ${node.baseline!.median.toFixed(0)} ms)`, met: node.baseline!.median / node.cli.median >= 5 });
    out.push({ goal: 'node: at least 5x faster than objdump -d (fresh process, work only)', measured: `${(node.baseline!.median / node.median).toFixed(1)}x (objdump ${node.baseline!.median.toFixed(0)} ms; warm ${(node.baseline!.median / node.warm.median).toFixed(1)}x)`, met: node.baseline!.median / node.median >= 5 });
  }
  // E9Patch's 0.2 s (issue 8) was measured on this machine when `objdump -d` took 0.3 s over
  // libc.so.6; this VM's speed drifts by 10-20% between hours, so the same E9Patch run scaled by
  // objdump's time in this run is given beside the target (the target itself stays 0.2 s).
  const libcObjdump = results.find((x) => x.label === 'libc.so.6')?.baseline?.median;
  const e9Scaled = libcObjdump !== undefined ? `; E9Patch's 0.2 s scaled by objdump -d libc.so.6 in this run (${libcObjdump.toFixed(0)} ms against 300): ${(200 * libcObjdump / 300).toFixed(0)} ms` : '';
  for (const label of ['libc.so.6', 'busybox']) {
    const r = results.find((x) => x.label === label);
    if (!r) continue;
    out.push({ goal: `${label} rewritten in less time than E9Patch (0.2 s), warm`, measured: both(r), met: r.warm.median < 200 });
    out.push({ goal: `${label} rewritten in less time than E9Patch (0.2 s), fresh process (work only)`, measured: both(r), met: r.median < 200 });
    out.push({ goal: `${label}: \`libos-patch apply\` run as a command, the whole command, in less time than E9Patch (0.2 s)`, measured: `${r.cli.median.toFixed(0)} ms, ${r.cli.peakRssMb.toFixed(0)} MB (runs ${r.cli.runs.map((x) => x.toFixed(0)).join(', ')}); \`node -e 0\` in the same rounds ${r.cli.node.toFixed(0)} ms, the command above it ${r.cli.overNode.toFixed(0)} ms; started as \`node bin/libos-patch.js\` in this environment ${r.direct.median.toFixed(0)} ms${e9Scaled}`, met: r.cli.median < 200 });
  }
  return out;
}

function print(results: readonly RewriteResult[]): void {
  const f = processFloor();
  if (f) console.log(`fresh process with nothing to do: ${f.wallMs.toFixed(0)} ms, ${f.peakRssMb.toFixed(0)} MB; node -e 0: ${f.nodeMs.toFixed(0)} ms (in this environment as it is: ${f.nodeHereMs.toFixed(0)} ms); libos-patch --version: ${f.cliVersionMs.toFixed(0)} ms`);
  for (const r of results) {
    console.log(`${r.label}: libos-patch apply ${r.cli.median.toFixed(0)} ms (${r.cli.peakRssMb.toFixed(0)} MB) [${r.cli.stages}] (node bin/libos-patch.js: ${r.direct.median.toFixed(0)} ms); fresh ${r.median.toFixed(0)} ms (process ${r.process.median.toFixed(0)} ms, ${r.peakRssMb.toFixed(0)} MB), warm ${r.warm.median.toFixed(0)} ms [${r.warm.stages}], ${r.sitesPerSecond.toFixed(0)} sites/s; objdump -d ${r.baseline!.median.toFixed(0)} ms, ${r.baseline!.peakRssMb?.toFixed(0)} MB\n  ${r.detail}`);
  }
  for (const t of targets(results)) console.log(`${t.met ? 'met    ' : 'NOT met'} ${t.goal}: ${t.measured}`);
}

const argv = process.argv;
if (argv[1] !== undefined && realpathSync(argv[1]) === realpathSync(SELF)) {
  if (argv[2] === '--child') {
    const timing = await rewriteOnce(argv[3]!, argv[4]!);
    process.stdout.write(`${JSON.stringify({ timing, maxRssKb: process.resourceUsage().maxRSS })}\n`);
  } else if (argv[2] === '--idle') {
    process.stdout.write(`${JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS })}\n`);
  } else {
    print(await run());
  }
}
