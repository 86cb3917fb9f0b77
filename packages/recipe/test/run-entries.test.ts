/**
 * Issue 5: every entry binding runs. fixtures/runtime/entry.c sets up, before its first annotated
 * site, each way a LibOS can be reached, with a toy LibOS (entry-asm.S) that passes calls to the
 * kernel but answers getppid with 4242:
 *  - `symbol`: my_libos_entry, an asm function with the hook convention (called; result in rax);
 *  - `address`: a copy of it in an RX page mapped at 0x7f0000000000 (MAP_FIXED_NOREPLACE);
 *  - the %gs slot: GS base (ARCH_SET_GS) -> a block whose qword at +24 is gs_libos_entry, reached by
 *    `jmp *%gs:24` with rcx = resume (gramine-style);
 *  - the pointer: `__occlum_entry` = occlum_libos_entry, reached by `jmp *__occlum_entry(%rip)`
 *    (occlum-style).
 * Each rewritten program prints what the original prints, except that getppid is 4242; the ABI
 * probes of abi-asm.S (flags, red zone, xmm, registers) run through the same entry and hold.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry } from '@libos/recipe';
import { buildRuntimeFixtures } from './helpers/build-runtime-fixtures.js';
import { builtinRecipe, rewriteWith, runProgram } from './helpers/run-rewritten.js';

const ORIGINAL = 'entry: hello\nentry: getppid is the parent\nentry: getpid ok\nentry: abi ok\nentry: bye\n';
const THROUGH_LIBOS = 'entry: hello\nentry: getppid is 4242\nentry: getpid ok\nentry: abi ok\nentry: bye\n';
const STATUS = 5;
// In the static build, gramine-style and occlum-style would also patch glibc's own start-up calls,
// which run before main sets up %gs or __occlum_entry: only the annotation-only recipes run there.
const BINARIES = ['entry', 'entryNonPie', 'entryStatic'] as const;
const ANNOTATION_ONLY = new Set(['glibc-rfc', 'glibc-rfc-seed-stub', 'glibc-rfc-relaxed']);

interface Case {
  what: string;
  recipe: string;
  /** Overrides the recipe's own entry; undefined = the recipe's. */
  entry?: Entry;
  /** The entry the plan must record. */
  planEntry: Entry;
}

const SYMBOL: Entry = { kind: 'symbol', name: 'my_libos_entry' };
const ADDRESS: Entry = { kind: 'address', va: 0x7f0000000000n };
const SLOT: Entry = { kind: 'slot', segment: 'gs', offset: 24 };
const POINTER: Entry = { kind: 'pointer', symbol: '__occlum_entry' };

const CASES: Case[] = [
  { what: 'symbol (fast stub)', recipe: 'glibc-rfc', entry: SYMBOL, planEntry: SYMBOL },
  { what: 'symbol (seed stub)', recipe: 'glibc-rfc-seed-stub', entry: SYMBOL, planEntry: SYMBOL },
  { what: 'symbol (relaxed)', recipe: 'glibc-rfc-relaxed', entry: SYMBOL, planEntry: SYMBOL },
  { what: 'address (fast stub)', recipe: 'glibc-rfc', entry: ADDRESS, planEntry: ADDRESS },
  { what: 'address (seed stub)', recipe: 'glibc-rfc-seed-stub', entry: ADDRESS, planEntry: ADDRESS },
  { what: '%gs:24 slot, the recipe\'s own entry', recipe: 'gramine-style', planEntry: SLOT },
  { what: '%gs:24 slot through glibc-rfc', recipe: 'glibc-rfc', entry: SLOT, planEntry: SLOT },
  { what: '__occlum_entry pointer, the recipe\'s own entry', recipe: 'occlum-style', planEntry: POINTER },
  { what: '__occlum_entry pointer through glibc-rfc', recipe: 'glibc-rfc', entry: POINTER, planEntry: POINTER },
];

test('the built-in gramine-style and occlum-style recipes bind the slot and the pointer', () => {
  assert.equal(builtinRecipe('gramine-style').entry, SLOT);
  assert.equal(builtinRecipe('occlum-style').entry, POINTER);
});

for (const bin of BINARIES) {
  test(`${bin}: the original runs without any LibOS`, async () => {
    const fx = await buildRuntimeFixtures();
    const r = runProgram(fx[bin]);
    assert.is(r.stdout, ORIGINAL);
    assert.is(r.status, STATUS);
  });

  for (const c of CASES.filter((x) => bin !== 'entryStatic' || ANNOTATION_ONLY.has(x.recipe))) {
    test(`${bin} x ${c.recipe}: entry ${c.what} runs, and getppid is answered by the LibOS`, async () => {
      const fx = await buildRuntimeFixtures();
      const rw = await rewriteWith(fx[bin], c.recipe, c.entry);
      assert.equal(rw.plan.entry, c.planEntry);
      assert.is(rw.plan.patches.length, 16, `the 16 annotated sites (4 in entry.c, 12 in the ABI probes) (refused: ${rw.plan.refused.map((x) => x.reason).join('; ')})`);
      const r = runProgram(rw.path);
      assert.is(r.signal, null, `killed by ${r.signal}; stderr ${r.stderr.slice(0, 400)}`);
      assert.is(r.stdout, THROUGH_LIBOS);
      assert.is(r.status, STATUS);
      assert.is(r.stderr, '');
    });
  }
}

test.run();
