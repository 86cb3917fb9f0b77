/**
 * Beyond the gcc fixtures: the system's own libc.so.6 (no annotation table, no padding) rewritten with
 * the built-in recipes that decode `syscall` instructions (unannotated: every one, neighbours displaced
 * to make room; gramine-style and occlum-style: those in .text*; mov-eax-syscall: `mov $nr,%eax;
 * syscall` pairs; trap-only: a trap at each) and loaded through LD_LIBRARY_PATH by unmodified programs: /bin/sh, and the run-test programs that lean on glibc for
 * threads (pthread_create makes clone3 in libc: the child returns on its own stack, so the call must
 * be made natively) and signals (__restore_rt makes rt_sigreturn). With `trace`, those calls are seen.
 */
import { dirname } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry } from '@libos/recipe';
import { missingFile, testNeeding } from '../../../fixtures/prerequisites.js';
import { buildRuntimeFixtures } from './helpers/build-runtime-fixtures.js';
import { rewriteWith, runProgram, straceCounts, traceCounts, type Rewritten } from './helpers/run-rewritten.js';

const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';
const SH = '/bin/sh';
const SCRIPT = 'echo hi; /bin/true; echo "status $?"';
const figures: string[] = [];

// Exact trace counts are checked where every syscall of libc is a site (unannotated). trap-only would
// put ud2 at every site and rely on the trap runtime's handler, which a library installs from its
// initializer; but ld.so calls libc's __libc_early_init before any initializer (its getrlimit traps
// with no handler yet: SIGILL, as the first trap runtime for libraries did). The planner refuses the
// trap in libc.so.6, with the reason, and the programs run on the unchanged calls.
const RECIPES = ['unannotated', 'gramine-style', 'occlum-style', 'mov-eax-syscall', 'trap-only'];
const FULL = 'unannotated';

const rewrites = new Map<string, Promise<Rewritten>>();
function rewrittenLibc(recipe: string, entry: Entry): Promise<Rewritten> {
  const key = `${recipe} ${entry.kind}`;
  let p = rewrites.get(key);
  if (p === undefined) {
    p = rewriteWith(LIBC, recipe, entry);
    rewrites.set(key, p);
  }
  return p;
}

const noLibc = missingFile(LIBC);
if (noLibc !== undefined) {
  testNeeding(test, noLibc, 'libc.so.6: the rewritten system libc', () => {});
} else {
  for (const recipe of RECIPES) {
    test(`libc.so.6 x ${recipe}: the plan patches the decoded syscalls`, async () => {
      const rw = await rewrittenLibc(recipe, { kind: 'passthrough' });
      const variants: Record<string, number> = {};
      for (const p of rw.plan.patches) variants[p.variant] = (variants[p.variant] ?? 0) + 1;
      figures.push(`libc.so.6 x ${recipe}: ${rw.sites.length} sites, ${rw.plan.patches.length} patched ${JSON.stringify(variants)}, ${rw.plan.refused.length} refused`);
      assert.ok(rw.sites.length > 100, `${rw.sites.length} sites`);
      if (recipe === 'trap-only') {
        for (const r of rw.plan.refused) assert.match(r.reason, /trap \(.*__libc_early_init/, r.reason);
        assert.is(rw.plan.patches.length + rw.plan.refused.length, rw.sites.length);
      } else {
        assert.ok(rw.plan.patches.length > rw.sites.length / 2, `${rw.plan.patches.length} of ${rw.sites.length} patched`);
      }
    });

    for (const entry of [{ kind: 'passthrough' }, { kind: 'trace' }] as const) {
      test(`libc.so.6 x ${recipe} (${entry.kind}): /bin/sh runs a script as with the original libc`, async () => {
        const rw = await rewrittenLibc(recipe, entry);
        const original = runProgram(SH, ['-c', SCRIPT]);
        const r = runProgram(SH, ['-c', SCRIPT], { env: { LD_LIBRARY_PATH: dirname(rw.path) } });
        assert.is(r.signal, null, `killed by ${r.signal}`);
        assert.is(r.stdout, original.stdout);
        assert.is(r.stdout, 'hi\nstatus 0\n');
        assert.is(r.status, 0);
        if (entry.kind === 'trace' && recipe === FULL) {
          // Every write and wait4 of the shell and of /bin/true (which loads the rewritten libc too) is
          // made by libc: the kernel's count and the trace's agree.
          const names = ['write', 'wait4', 'exit_group'];
          const kernel = straceCounts(SH, ['-c', SCRIPT], names).counts;
          const counts = traceCounts(r.stderr);
          for (const n of names) assert.is(counts[n] ?? 0, kernel[n] ?? 0, `${n}: trace ${counts[n] ?? 0}, strace ${kernel[n] ?? 0}`);
        } else if (entry.kind === 'passthrough') {
          assert.is(r.stderr, '');
        }
      });

      test(`libc.so.6 x ${recipe} (${entry.kind}): 8 pthreads (clone3 in libc) x 20,000 getppid`, async () => {
        const fx = await buildRuntimeFixtures();
        const rw = await rewrittenLibc(recipe, entry);
        const r = runProgram(fx.threads, [], { env: { LD_LIBRARY_PATH: dirname(rw.path) }, timeoutMs: 120_000 });
        assert.is(r.signal, null, `killed by ${r.signal}`);
        assert.is(r.stdout, 'threads: 8 x 20000 getppid, calls 176000, wrong 0\n');
        assert.is(r.status, 0);
        if (entry.kind === 'trace' && recipe === FULL) {
          const counts = traceCounts(r.stderr);
          // clone3 in the parent and in each child (8 + 8); each thread ends with exit.
          assert.is(counts['clone3'], 16, `clone3 lines: ${counts['clone3']}`);
          assert.is(counts['exit'], 8);
          figures.push(`libc.so.6 (trace): threads fixture traced ${Object.values(counts).reduce((a, b) => a + b, 0)} libc calls ${JSON.stringify(counts)}`);
        }
      });

      test(`libc.so.6 x ${recipe} (${entry.kind}): SIGALRM handlers return through the rewritten __restore_rt`, async () => {
        const fx = await buildRuntimeFixtures();
        const rw = await rewrittenLibc(recipe, entry);
        const r = runProgram(fx.sigalrm, ['300'], { env: { LD_LIBRARY_PATH: dirname(rw.path) }, timeoutMs: 60_000 });
        assert.is(r.signal, null, `killed by ${r.signal}`);
        const m = /^sigalrm: main calls (\d+) wrong 0, handler runs (\d+) wrong 0\n$/.exec(r.stdout);
        assert.ok(m !== null, `stdout ${JSON.stringify(r.stdout)}`);
        assert.is(r.status, 0);
        if (entry.kind === 'trace' && recipe === FULL) assert.is(traceCounts(r.stderr)['rt_sigreturn'], Number(m![2]), 'one rt_sigreturn line per handler run');
      });
    }
  }

  test('figures', () => {
    for (const f of figures) console.log(`  ${f}`);
  });
}

test.run();
