/**
 * Issue 5, "What it must show": the gcc fixtures (non-PIE, PIE, static, static-pie, and the shared
 * library loaded by an unpatched program) rewritten with every built-in recipe that finds sites in
 * them, and RUN. With `passthrough` the program's stdout and exit status are the original's and the
 * kernel sees the same calls (strace -f); with `trace` stdout and status are still the original's
 * and stderr holds exactly one `[libos] ` line per intercepted call, counted per name against the
 * program's own known calls (prog.c, libannot.c). glibc-rfc-abs64 is refused in position-independent
 * files, with the reason in the plan, and its fallback applies.
 */
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listBuiltinRecipes } from '@libos/recipe';
import { buildFixtures, type FixtureName } from '../../../fixtures/build.js';
import { missingRelr, testNeeding } from '../../../fixtures/prerequisites.js';
import {
  builtinRecipe, expectedTraceCounts, freshDir, only, rewriteWith, runProgram, straceCounts, traceCounts, traceLines,
  type KnownCall,
} from './helpers/run-rewritten.js';

// What prog.c and prog-asm.S do, site by site (17 calls through 12 sites).
const PROG_CALLS: KnownCall[] = [
  { fn: 'c_write', name: 'write', nr: 1, times: 6 },
  { fn: 'main', name: 'gettid', nr: 186, times: 1 },
  { fn: 'c_getpid', name: 'getpid', nr: 39, times: 1 },
  { fn: 'main', name: 'getppid', nr: 110, times: 1 },
  { fn: 'fx_getppid', name: 'getppid', nr: 110, times: 1 },
  { fn: 'fx_uname', name: 'uname', nr: 63, times: 1 },
  { fn: 'fx_write', name: 'write', nr: 1, times: 1 },
  { fn: 'c_mmap', name: 'mmap', nr: 9, times: 1 },
  { fn: 'c_munmap', name: 'munmap', nr: 11, times: 1 },
  { fn: 'c_sigprocmask_query', name: 'rt_sigprocmask', nr: 14, times: 1 },
  { fn: 'c_prctl_get_name', name: 'prctl', nr: 157, times: 1 },
  { fn: 'main', name: 'exit_group', nr: 231, times: 1 },
];
// libannot.c and libannot-asm.S as use-lib.c calls them (use-lib's own exit_group site stays unpatched).
const LIB_CALLS: KnownCall[] = [
  { fn: 'annot_write', name: 'write', nr: 1, times: 3 },
  { fn: 'annot_getpid', name: 'getpid', nr: 39, times: 1 },
  { fn: 'annot_gettid', name: 'gettid', nr: 186, times: 1 },
  { fn: 'annot_getuid', name: 'getuid', nr: 102, times: 1 },
];
const PROG_NAMES = [...new Set(PROG_CALLS.map((c) => c.name))];
const LIB_NAMES = [...new Set(LIB_CALLS.map((c) => c.name))];

// The four program kinds the issue names, then the other runnable builds of prog.c (the pcrel table
// in a PIE, RELR relocations where the linker makes them, and a stripped PIE).
const PROGRAMS: FixtureName[] = ['nonPie', 'pie', 'static', 'staticPie', 'pcrelPie', 'relr', 'stripped'];
const POSITION_INDEPENDENT = new Set<FixtureName>(['pie', 'staticPie', 'pcrelPie', 'relr', 'stripped', 'shared']);
const RECIPES = listBuiltinRecipes().map((r) => r.name);

const sum = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);
const figures: string[] = [];

test('the built-in recipes are the ones this file runs', () => {
  for (const name of ['glibc-rfc', 'glibc-rfc-seed-stub', 'glibc-rfc-relaxed', 'glibc-rfc-abs64', 'nop-padded', 'mov-eax-syscall', 'gramine-style', 'occlum-style']) {
    assert.ok(RECIPES.includes(name), name);
  }
});

/** The original run, strace's counts of it, and the fixture's own expectations. */
async function original(name: FixtureName) {
  const fixtures = await buildFixtures();
  const info = fixtures.list.find((f) => f.name === name)!;
  const program = name === 'shared' ? fixtures.sharedMain : info.path;
  const runInfo = name === 'shared' ? fixtures.list.find((f) => f.name === 'sharedMain')!.run! : info.run!;
  const env = { LD_LIBRARY_PATH: fixtures.dir };
  const names = name === 'shared' ? LIB_NAMES : PROG_NAMES;
  const run = runProgram(program, [], { env });
  const strace = straceCounts(program, [], names, env);
  return { fixtures, info, program, runInfo, env, names, run, strace };
}

const noRelr = await missingRelr();
for (const name of [...PROGRAMS, 'shared' as const]) {
  for (const recipeName of RECIPES) {
    testNeeding(test, name === 'relr' ? noRelr : undefined, `${name} x ${recipeName}: runs as the original (passthrough, strace) and traces one line per intercepted call`, async () => {
      const o = await original(name);
      assert.is(o.run.status, o.runInfo.status, 'the original run');
      assert.is(o.run.stdout, o.runInfo.stdout, 'the original run');
      const recipe = builtinRecipe(recipeName);
      const calls = name === 'shared' ? LIB_CALLS : PROG_CALLS;

      // Passthrough: same stdout and status, and the kernel sees the very same calls.
      const pass = await rewriteWith(o.info.path, recipe, { kind: 'passthrough' });
      if (pass.sites.length === 0) return; // the recipe does not apply to this file
      const runPass = (path: string, env: Record<string, string>) => runProgram(name === 'shared' ? o.program : path, [], { env });
      const passEnv = name === 'shared' ? { LD_LIBRARY_PATH: dirname(pass.path) } : o.env;
      const rp = runPass(pass.path, passEnv);
      assert.is(rp.signal, null, `passthrough: killed by ${rp.signal}; stderr ${rp.stderr.slice(0, 400)}`);
      assert.is(rp.stdout, o.run.stdout, 'passthrough stdout');
      assert.is(rp.status, o.run.status, 'passthrough exit status');
      assert.is(rp.stderr, '', 'passthrough writes nothing to stderr');
      const sp = straceCounts(name === 'shared' ? o.program : pass.path, [], o.names, passEnv);
      // A trapped rt_sigprocmask is emulated on the signal frame's mask (so that the program cannot
      // block the trap's own signal): the kernel no longer sees it as a call of its own.
      const trappedMasks = pass.plan.patches.filter((p) => p.variant === 'trap').length > 0 ? (o.strace.counts['rt_sigprocmask'] ?? 0) : 0;
      const kernelCalls = { ...o.strace.counts };
      if (trappedMasks > 0) {
        const rest = (kernelCalls['rt_sigprocmask'] ?? 0) - trappedMasks;
        if (rest > 0) kernelCalls['rt_sigprocmask'] = rest;
        else delete kernelCalls['rt_sigprocmask'];
      }
      assert.equal(sp.counts, kernelCalls, 'strace -f: the same calls as the original (a trapped rt_sigprocmask emulated)');

      // Trace: same stdout and status; one line per intercepted call.
      const traced = await rewriteWith(o.info.path, recipe, { kind: 'trace' });
      const traceEnv = name === 'shared' ? { LD_LIBRARY_PATH: dirname(traced.path) } : o.env;
      const rt = runPass(traced.path, traceEnv);
      assert.is(rt.signal, null, `trace: killed by ${rt.signal}; stderr ${rt.stderr.slice(0, 400)}`);
      assert.is(rt.stdout, o.run.stdout, 'trace stdout');
      assert.is(rt.status, o.run.status, 'trace exit status');
      const lines = traceLines(rt.stderr);
      const counts = traceCounts(rt.stderr);
      const expected = expectedTraceCounts(traced, calls, name === 'stripped' ? o.fixtures.pie : undefined);
      // Trapping sites too (trap-only; glibc-rfc-abs64's fallback in position-independent files): the
      // calls the trap runtime makes natively after its handler (rt_sigprocmask) get their line as well.
      const variants = [...new Set(traced.plan.patches.map((p) => p.variant))].join(', ');
      assert.equal(only(counts, o.names), expected, `trace lines per name (${traced.plan.patches.length} sites patched: ${variants})`);
      // Calls made by sites outside the program's own code (static glibc's) are traced too; never more
      // often than the kernel saw them.
      const others = Object.keys(counts).filter((n) => !o.names.includes(n));
      if (others.length > 0) {
        const kernel = straceCounts(o.program, [], others, o.env).counts;
        for (const n of others) assert.ok((counts[n] ?? 0) <= (kernel[n] ?? 0), `trace ${n} x${counts[n]} but strace saw ${kernel[n] ?? 0}`);
      }
      assert.ok(rt.stderr.split('\n').filter((l) => l !== '').every((l) => l.startsWith('[libos] ')), 'stderr holds trace lines only');
      // The lines carry the call's own arguments and result: every write the program makes goes to fd 1
      // and returns its length.
      for (const l of lines.filter((x) => x.name === 'write' && x.args[0] === '0x1')) {
        assert.is(BigInt(l.result), BigInt(l.args[2]!), `write result = length: ${JSON.stringify(l)}`);
      }
      assert.is(lines.filter((x) => x.name === 'write' && x.args[0] === '0x1').length, counts['write'] ?? 0, 'every traced write is to fd 1');
      figures.push(`${name} x ${recipeName}: ${traced.plan.patches.length}/${traced.sites.length} sites patched, ${lines.length} trace lines (${sum(expected)} expected from the program's own calls)`);

      // Position-independent files: abs64 is refused with a reason, and the fallback applies.
      if (recipeName === 'glibc-rfc-abs64') {
        const decisions = [...traced.plan.patches.map((p) => ({ reason: p.reason, variant: p.variant as string })), ...traced.plan.refused.map((r) => ({ reason: r.reason, variant: 'refused' }))];
        if (POSITION_INDEPENDENT.has(name)) {
          assert.ok(decisions.length > 0);
          for (const d of decisions) {
            assert.is.not(d.variant, 'abs64');
            assert.match(d.reason, /abs64 \(an absolute address .*position-independent/);
          }
        } else {
          assert.ok(traced.plan.patches.every((p) => p.variant === 'abs64'), `abs64 in a ${name} file: ${traced.plan.patches.map((p) => p.variant).join(',')}`);
        }
      }
    });
  }
}

test('mov-eax-syscall: a bare `mov $nr,%eax; syscall` (7 bytes, no padding) gets a jump, not a trap', async () => {
  // The recipe's promise (recipes/mov-eax-syscall.yaml): the mov and the syscall together leave room
  // for a `jmp rel32` into a per-site trampoline that sets eax itself. Static glibc has dozens of these.
  // (Red while the planner sized the room from the syscall alone: every bare site fell back to the trap.)
  const fixtures = await buildFixtures();
  const rw = await rewriteWith(fixtures.static, 'mov-eax-syscall', { kind: 'passthrough' });
  const bare = rw.plan.patches.filter((p) => (rw.sites[p.site]?.room ?? 0) < 5 && rw.sites[p.site]?.movVa !== undefined);
  const jumped = bare.filter((p) => p.variant === 'rel32-site');
  figures.push(`static x mov-eax-syscall: ${bare.length} bare mov+syscall sites, ${jumped.length} with rel32-site, ${bare.filter((p) => p.variant === 'trap').length} trapped`);
  assert.ok(bare.length > 10, `${bare.length} bare sites`);
  assert.ok(jumped.length > bare.length / 2, `only ${jumped.length} of ${bare.length} bare sites get rel32-site; e.g. ${bare[0]?.reason}`);
});

for (const recipeName of RECIPES) {
  test(`sharedMain and shared both rewritten x ${recipeName}: the program and its library run together`, async () => {
    // Both objects of one process carry added code (and, for trapping sites, a trap runtime each:
    // the program's start stub and the library's initializer both install a handler).
    // For trap-only and glibc-rfc-abs64 (whose fallback in these position-independent files is the
    // trap) the two handlers must chain: the program's, installed last, passes the library's sites on
    // (red while it replaced the library's handler and the library's first trap killed the process).
    const fixtures = await buildFixtures();
    const dir = freshDir(`both-${recipeName}`);
    const lib = await rewriteWith(fixtures.shared, recipeName, { kind: 'trace' }, dir);
    const main = await rewriteWith(fixtures.sharedMain, recipeName, { kind: 'trace' }, dir);
    if (lib.sites.length === 0 && main.sites.length === 0) return;
    const r = runProgram(main.path, [], { env: { LD_LIBRARY_PATH: dir } });
    assert.is(r.signal, null, `killed by ${r.signal}; stderr ${r.stderr.slice(0, 400)}`);
    assert.is(r.stdout, 'lib: hello\nlib: pid ok\nlib: uid ok\n');
    assert.is(r.status, 3);
    const expected = expectedTraceCounts(lib, LIB_CALLS);
    if (main.plan.patches.length > 0) expected['exit_group'] = 1;
    assert.equal(traceCounts(r.stderr), expected, 'the library\'s calls and the program\'s exit_group');
  });
}

test('the shared library is run from a directory of its own under its own name', async () => {
  const fixtures = await buildFixtures();
  const dir = freshDir('shared-copy');
  copyFileSync(fixtures.shared, join(dir, 'libannot.so'));
  const r = runProgram(fixtures.sharedMain, [], { env: { LD_LIBRARY_PATH: dir } });
  assert.is(r.status, 3);
  assert.is(r.stdout, 'lib: hello\nlib: pid ok\nlib: uid ok\n');
  const traced = await rewriteWith(fixtures.shared, 'glibc-rfc', { kind: 'trace' });
  const rt = runProgram(fixtures.sharedMain, [], { env: { LD_LIBRARY_PATH: dirname(traced.path) } });
  assert.is(rt.stdout, r.stdout);
  assert.ok(traceLines(rt.stderr).length > 0, 'the rewritten copy is the one loaded');
});

test('figures', () => {
  for (const f of figures) console.log(`  ${f}`);
});

test.run();
