/**
 * Issue 7, Debian's busybox-static rewritten with the built-in recipe `unannotated` (no annotation
 * table: every `syscall` found by decoding, neighbours displaced into the site's trampoline, a
 * trap where no window can be moved).
 *
 * Shown here: every site is patched (none refused; the trapped ones say why displacement was not
 * possible); fixtures/unannotated/applets.sh, run by the rewritten busybox's own `sh` over 40-odd
 * applets, prints exactly what the original prints, with `passthrough` and with `trace`; and with
 * `trace` each syscall name is counted as often as `strace -f -qq -e trace=all` counts it for the
 * same script run by the original busybox, with these differences, each accounted for below:
 *   - execve: strace also sees the execve that starts the first process, made by strace itself
 *     before any code of the rewritten file runs (trace = strace - 1);
 *   - clone, vfork: the child returns through the same trampoline as the parent, so each call has
 *     two trace lines, the parent's (= child pid) and the child's (= 0); strace shows one;
 *   - rt_sigreturn: one per signal delivered to a handler. The only one the script's processes
 *     handle is SIGCHLD in the shell, and the kernel merges a SIGCHLD that arrives while another is
 *     pending, so how many are delivered depends on timing (strace's slowdown alone changes it).
 *     The count is compared within one run instead: the rewritten busybox run under strace shows
 *     as many rt_sigreturn trace lines as strace sees rt_sigreturn calls in the same run.
 *   - a call the kernel restarts by itself (a fork interrupted by SIGCHLD: ERESTARTNOINTR) is one
 *     call to the program and one trace line; strace shows each attempt, so the attempts it marks
 *     `(To be restarted)` are not counted.
 * calls made inside the vDSO (clock_gettime, gettimeofday, time) are seen by neither.
 *
 * busybox picks its applet from argv[0] and runs applets through /proc/self/exe, so each copy is
 * named `busybox` in a directory of its own, beside a symlink per applet; PATH holds that
 * directory only, so every program the script starts is the busybox under test.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PatchPlan } from '@libos/recipe';
import { missingFile, testNeeding } from '../../../fixtures/prerequisites.js';
import { countByName, freshDir, rewriteWith, traceLines, type Rewritten } from './helpers/run-rewritten.js';

const BUSYBOX = '/bin/busybox';
const SCRIPT = resolve(fileURLToPath(new URL('../../../fixtures/unannotated/applets.sh', import.meta.url)));
const STRACE = onPath('strace');

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, name);
    if (dir !== '' && existsSync(path)) return path;
  }
  return undefined;
}

interface Install {
  dir: string;
  busybox: string;
}

/** A directory holding `busybox` (a copy of `file`) and a symlink to it per applet. */
function install(file: string, label: string): Install {
  const dir = freshDir(label);
  const busybox = join(dir, 'busybox');
  copyFileSync(file, busybox);
  const list = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n');
  for (const applet of list) if (applet !== '' && applet !== 'busybox') symlinkSync('busybox', join(dir, applet));
  return { dir, busybox };
}

interface ScriptRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The script's work directory (it keeps err.txt, the one file its stderr was sent to). */
  work: string;
}

/** Runs applets.sh with the busybox of `at`, optionally under strace writing to `straceLog`. */
function runScript(at: Install, straceLog?: string): ScriptRun {
  const work = join(freshDir('applets-work'), 'w'); // does not exist yet: the script's `rm -rf` does the same in every run
  const argv = [at.busybox, 'sh', SCRIPT, work];
  const [cmd, ...args] = straceLog === undefined ? argv : [STRACE!, '-f', '-qq', '-e', 'trace=all', '-o', straceLog, '--', ...argv];
  // Only PATH: no locale or anything else from the test's environment reaches the script.
  const r = spawnSync(cmd!, args, { encoding: 'utf8', env: { PATH: at.dir }, timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, work };
}

/**
 * Counts per name of the calls in a strace -f log. A call split by `<unfinished ...>` counts once;
 * an attempt the kernel restarts by itself (`= ? ERESTARTNOINTR (To be restarted)`, a fork
 * interrupted by a signal) does not count: the program makes that call once and the trace shows
 * it once, while strace shows each attempt. (Other ERESTART* codes end, in these runs, in an EINTR
 * the program sees: the only handler, ash's SIGCHLD, has no SA_RESTART.)
 */
function straceLogCounts(log: string): Record<string, number> {
  const names: string[] = [];
  const restarted: string[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /^(?:\d+\s+)?([a-z0-9_]+)\(/.exec(line);
    if (m !== null) names.push(m[1]!);
    if (/= \? ERESTARTNOINTR \(To be restarted\)$/.test(line)) {
      const name = /^(?:\d+\s+)?(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()/.exec(line);
      if (name === null) throw new Error(`strace: a restarted call without a name: ${line}`);
      restarted.push((name[1] ?? name[2])!);
    }
  }
  const counts = countByName(names);
  for (const name of restarted) counts[name]! -= 1;
  return counts;
}

/** For a failure message: the strace lines of calls that ended without an ordinary result. */
function unusualReturns(log: string): string {
  const lines = readFileSync(log, 'utf8').split('\n').filter((l) => /= \? [A-Z]|ERESTART|restart_syscall/.test(l) && !/^(?:\d+\s+)?(exit_group|exit|execve|rt_sigreturn)\(/.test(l));
  return lines.length === 0 ? '' : `; strace lines without an ordinary result: ${lines.slice(0, 20).join(' | ')}`;
}

/** Signals strace saw delivered, by name. */
function straceSignals(log: string): Record<string, number> {
  const names: string[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /^(?:\d+\s+)?--- (SIG[A-Z0-9]+) /.exec(line);
    if (m !== null) names.push(m[1]!);
  }
  return countByName(names);
}

/** Every trace line of a run: its stderr, and err.txt, where `2> err.txt` sent the lines written meanwhile. */
function runTrace(run: ScriptRun) {
  return [...traceLines(run.stderr), ...traceLines(readFileSync(join(run.work, 'err.txt'), 'utf8'))];
}

/** Plan figures for the report: sites, patched by variant, refused with reasons. */
function describePlan(plan: PatchPlan): string {
  const by = Object.entries(plan.stats.byVariant).map(([k, v]) => `${k} ${v}`).join(', ');
  return `sites ${plan.stats.sites}, patched ${plan.stats.patched} (${by}), refused ${plan.stats.refused}`;
}

interface Fixture {
  original: Install;
  passthrough: Rewritten & Install & { ms: number };
  trace: Rewritten & Install & { ms: number };
  reference: ScriptRun;
}

let cached: Promise<Fixture> | undefined;

/** The original and both rewritten copies, installed, and the original's run of the script; made once per file. */
function fixture(): Promise<Fixture> {
  cached ??= (async () => {
    // Labels of one length: every run sees paths (argv[0], PATH) of the same length.
    const original = install(BUSYBOX, 'busybox-o');
    const made = async (kind: 'passthrough' | 'trace') => {
      const t0 = performance.now();
      const rw = await rewriteWith(BUSYBOX, 'unannotated', { kind }, freshDir(`busybox-${kind}-out`));
      const ms = performance.now() - t0;
      return { ...rw, ...install(rw.path, kind === 'trace' ? 'busybox-t' : 'busybox-p'), ms };
    };
    const passthrough = await made('passthrough');
    const trace = await made('trace');
    for (const [kind, rw] of [['passthrough', passthrough], ['trace', trace]] as const) {
      const growth = statSync(rw.path).size / statSync(BUSYBOX).size - 1;
      console.log(`  busybox ${kind}: ${describePlan(rw.plan)}, rewritten in ${rw.ms.toFixed(0)} ms, growth ${(growth * 100).toFixed(2)}%`);
    }
    return { original, passthrough, trace, reference: runScript(original) };
  })();
  return cached;
}

const noBusybox = missingFile(BUSYBOX, 'Debian: apt-get install busybox-static');
if (noBusybox !== undefined) {
  testNeeding(test, noBusybox, 'busybox: the unannotated busybox tests of issue 7', () => {});
} else {
  test('busybox: every syscall site is patched, none refused; each trap says why displacement failed', async () => {
    const fx = await fixture();
    for (const rw of [fx.passthrough, fx.trace]) {
      const { plan } = rw;
      assert.ok(rw.sites.length > 200, `busybox has hundreds of syscall sites (found ${rw.sites.length})`);
      assert.is(plan.refused.length, 0, `refused: ${plan.refused.map((r) => `0x${r.va.toString(16)}: ${r.reason}`).join('; ')}`);
      assert.is(plan.patches.length, rw.sites.length, 'one patch per site');
      assert.is(plan.stats.patched, rw.sites.length);
      const byVariant = plan.stats.byVariant as Record<string, number>;
      // Displacement everywhere it can move a window; a trap only where it cannot.
      assert.ok(Object.keys(byVariant).every((v) => v === 'displace' || v === 'trap'), describePlan(plan));
      assert.is((byVariant.displace ?? 0) + (byVariant.trap ?? 0), rw.sites.length);
      assert.ok(byVariant.displace! >= 0.95 * rw.sites.length, `displacement patches nearly all: ${describePlan(plan)}`);
      for (const p of plan.patches) {
        assert.ok(p.reason.length > 0, `the patch at 0x${p.va.toString(16)} has a reason`);
        if (p.variant === 'trap') assert.match(p.reason, /not displace \(.+\)/, `the trap at 0x${p.va.toString(16)} names why displace was not possible: ${p.reason}`);
      }
    }
  });

  test('busybox: applets.sh prints the same with the original and with the rewritten busybox (passthrough)', async () => {
    const fx = await fixture();
    const ref = fx.reference;
    assert.is(ref.status, 0, `the original's run failed: ${ref.stderr}`);
    assert.ok(ref.stdout.split('\n').length > 150, 'the script printed its output');
    assert.is(ref.stderr, '', 'the script writes nothing to stderr');
    const r = runScript(fx.passthrough);
    assert.is(r.signal, null);
    assert.is(r.status, 0, r.stderr);
    assert.fixture(r.stdout, ref.stdout);
    assert.is(r.stderr, ref.stderr);
    assert.is(readFileSync(join(r.work, 'err.txt'), 'utf8'), readFileSync(join(ref.work, 'err.txt'), 'utf8'));
  });

  test('busybox: with trace, the same output, and each syscall counted as strace counts the original', async () => {
    if (STRACE === undefined) throw new Error('strace is not installed (.ci/run installs it)');
    const fx = await fixture();
    const ref = fx.reference;
    const r = runScript(fx.trace);
    assert.is(r.signal, null);
    assert.is(r.status, 0);
    assert.fixture(r.stdout, ref.stdout);
    const lines = runTrace(r);
    // Apart from the trace lines, stderr and err.txt hold what the original's do.
    assert.is(r.stderr.split('\n').filter((l) => !l.startsWith('[libos] ')).join('\n'), ref.stderr);
    assert.is(readFileSync(join(r.work, 'err.txt'), 'utf8').split('\n').filter((l) => !l.startsWith('[libos] ')).join('\n'), readFileSync(join(ref.work, 'err.txt'), 'utf8'));

    const log = join(freshDir('busybox-strace'), 'strace.log');
    const st = runScript(fx.original, log);
    assert.is(st.status, 0);
    assert.is(st.stdout, ref.stdout, 'the original prints the same under strace');
    const expected = straceLogCounts(log);
    const traced = countByName(lines.map((l) => l.name));

    // execve: the first one is strace's own, before the rewritten file runs.
    assert.ok(expected.execve! > 30, 'the script starts dozens of programs');
    expected.execve! -= 1;
    // clone, vfork: one line from the parent (the child's pid) and one from the child (0).
    for (const name of ['clone', 'vfork']) {
      const parent = lines.filter((l) => l.name === name && l.result !== '0').length;
      const child = lines.filter((l) => l.name === name && l.result === '0').length;
      assert.is(child, parent, `${name}: each child's return is traced as well as the parent's`);
      traced[name] = parent;
    }
    // rt_sigreturn: one per SIGCHLD delivered to the shell's handler, a number set by timing;
    // compared below within one run. Here: SIGCHLD is the only signal, and both runs return from
    // at least one handler and from at most one per child.
    assert.equal(Object.keys(straceSignals(log)), ['SIGCHLD'], 'SIGCHLD is the only signal the script receives');
    const children = expected.clone! + (expected.vfork ?? 0);
    for (const [what, n] of [['strace', expected.rt_sigreturn], ['trace', traced.rt_sigreturn]] as const) {
      assert.ok(n !== undefined && n >= 1 && n <= children, `${what}: rt_sigreturn ${n}, between 1 and the ${children} children`);
    }
    delete expected.rt_sigreturn;
    delete traced.rt_sigreturn;
    assert.equal(traced, expected, `trace counts per name = strace counts of the original, with the differences above accounted for${unusualReturns(log)}`);
    console.log(`  busybox trace: ${lines.length} trace lines over ${Object.keys(traced).length + 1} syscall names; strace of the original: ${Object.values(expected).reduce((a, b) => a + b, 0)} calls`);
  });

  test('busybox: with trace under strace, every rt_sigreturn of the run is traced (and every other call)', async () => {
    if (STRACE === undefined) throw new Error('strace is not installed (.ci/run installs it)');
    const fx = await fixture();
    const log = join(freshDir('busybox-trace-strace'), 'strace.log');
    const r = runScript(fx.trace, log);
    assert.is(r.status, 0);
    assert.fixture(r.stdout, fx.reference.stdout);
    const lines = runTrace(r);
    const traced = countByName(lines.map((l) => l.name));
    const seen = straceLogCounts(log);
    assert.ok(traced.rt_sigreturn !== undefined && traced.rt_sigreturn >= 1);
    assert.is(traced.rt_sigreturn, seen.rt_sigreturn, 'rt_sigreturn: as many trace lines as strace sees calls in the same run');
    // The rest of the same run, with what the rewritten file adds itself: each trace line is one
    // write(2); when the plan has traps, the trap runtime installs its SIGILL handler with one
    // rt_sigaction per program image; execve, clone and vfork as in the test above.
    const expected = { ...seen };
    expected.write! -= lines.length;
    if (fx.trace.plan.patches.some((p) => p.variant === 'trap')) expected.rt_sigaction! -= seen.execve!;
    expected.execve! -= 1;
    for (const name of ['clone', 'vfork']) traced[name] = lines.filter((l) => l.name === name && l.result !== '0').length;
    assert.equal(traced, expected, `trace counts per name = strace counts of the same run, less the rewritten file's own calls${unusualReturns(log)}`);
  });
}

test.run();
