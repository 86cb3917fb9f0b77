// The plan's own check (checkPlan): a plan whose `before` bytes are not what the input holds, whose
// patches overlap or whose new bytes do not decode to their variant is refused with
// PLAN_CHECK_FAILED; and planPatches refuses a site whose window overlaps another's, with a reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf } from '@libos/elfkit';
import { findSites, planPatches, type PatchPlan, type PlanError } from '@libos/recipe';
import { checkPlan } from '../src/plan/check-plan.js';
import { assembleAndLink, builtin, goldenFixtures, planFile, vaHex } from './plan-helpers.js';

function expectCheckFailure(run: () => void, pattern: RegExp, label: string): PlanError {
  try {
    run();
  } catch (e) {
    // By code, not instanceof: checkPlan comes from the source, PlanError from the package entry.
    if ((e as { name?: string }).name !== 'PlanError') throw e;
    assert.is((e as PlanError).code, 'PLAN_CHECK_FAILED', label);
    assert.match((e as PlanError).message, pattern, label);
    return e as PlanError;
  }
  assert.unreachable(`${label}: the check passed`);
  throw new Error('unreachable');
}

/** A copy of the plan with its patches replaced (the rest shared). */
function withPatches(plan: PatchPlan, patches: PatchPlan['patches']): PatchPlan {
  return { ...plan, patches };
}

test('the check passes on the plans planPatches returns', async () => {
  const fx = goldenFixtures();
  for (const recipe of ['glibc-rfc', 'glibc-rfc-abs64', 'unannotated', 'trap-only']) {
    for (const linked of [fx.static, fx.pie]) {
      const { plan } = await planFile(linked.elf, recipe);
      checkPlan(linked.elf, plan);
    }
  }
});

test('a tampered input (site bytes that no longer match the plan) fails the check', async () => {
  const { elf, plan } = await planFile(goldenFixtures().static.elf, 'glibc-rfc');
  for (const p of plan.patches) {
    for (const delta of [0, 1, p.before.length - 1]) {
      const bytes = new Uint8Array(elf.bytes);
      bytes[p.offset + delta] = 0xcc;
      const tampered = readElf(bytes);
      const e = expectCheckFailure(() => checkPlan(tampered, plan), /'before' is not what the file holds/, `${vaHex(p.va)}+${delta}`);
      assert.is(e.va, p.va);
    }
  }
  // Bytes outside every window do not matter to the check (here: __occlum_entry in .data).
  const bytes = new Uint8Array(elf.bytes);
  const data = elf.vaToOffset(goldenFixtures().static.sym('__occlum_entry'))!;
  bytes[data] = bytes[data]! ^ 0xff;
  checkPlan(readElf(bytes), plan);
});

test('overlapping patches fail the check', async () => {
  const { elf, plan } = await planFile(goldenFixtures().static.elf, 'glibc-rfc');
  const p = plan.patches[0]!;
  // The same site twice.
  expectCheckFailure(() => checkPlan(elf, withPatches(plan, [p, { ...p }])), /overlaps the previous patch/, 'twice');
  // A second patch starting inside the first's window (its before bytes are the file's: only the overlap is wrong).
  const shifted = { ...p, va: p.va + 2n, offset: p.offset + 2, before: elf.bytes.slice(p.offset + 2, p.offset + 2 + p.before.length) };
  expectCheckFailure(() => checkPlan(elf, withPatches(plan, [p, shifted])), /overlaps the previous patch/, 'shifted');
});

test('new bytes that do not decode to the variant, or jump elsewhere than the trampoline, fail the check', async () => {
  const fx = goldenFixtures();
  {
    const { elf, plan } = await planFile(fx.static.elf, 'glibc-rfc');
    const p = plan.patches[0]!;
    const asCall = new Uint8Array(p.after);
    asCall[7] = 0xe8; // jmp rel32 -> call rel32
    expectCheckFailure(() => checkPlan(elf, withPatches(plan, [{ ...p, after: asCall }])), /decodes to Lea, Call.*expected Lea, Jmp/i, 'call for jmp');
    const short = p.after.subarray(0, 11);
    expectCheckFailure(() => checkPlan(elf, withPatches(plan, [{ ...p, after: short }])), /differ in length/, 'short');
    const garbage = new Uint8Array(p.after.length).fill(0x06); // push es: invalid in 64-bit mode
    expectCheckFailure(() => checkPlan(elf, withPatches(plan, [{ ...p, after: garbage }])), /do not decode/, 'invalid');
    // An instruction longer than what is left of the patch (a movabs where the jmp's rel32 starts)
    // does not decode from the patch's bytes, whatever bytes follow them.
    const overrun = new Uint8Array(p.after);
    overrun.set([0x48, 0xb8], 7);
    assert.ok(plan.patches[1] !== undefined, 'a second patch to read on into');
    for (const next of [undefined, plan.patches[1]]) {
      const patches = next === undefined ? [{ ...p, after: overrun }] : [{ ...p, after: overrun }, next];
      expectCheckFailure(() => checkPlan(elf, withPatches(plan, patches)), /do not decode/, 'overrun');
    }
  }
  {
    const { elf, plan } = await planFile(fx.static.elf, 'unannotated');
    const p = plan.patches.find((x) => x.variant === 'rel32-site')!;
    const other = plan.patches.find((x) => x.trampolineVa !== undefined && x.trampolineVa !== p.trampolineVa)!;
    expectCheckFailure(() => checkPlan(elf, withPatches(plan, [{ ...p, trampolineVa: other.trampolineVa! }])), /not to its trampoline/, 'wrong trampoline');
  }
});

const BACK_TO_BACK = `
    .text
    .globl _start
    .type _start, @function
_start:
    movl $39, %eax
    syscall
    movl $39, %eax
    syscall
    xorl %edi, %edi
    movl $60, %eax
    syscall
    hlt
    .size _start, . - _start
    .section .note.GNU-stack, "", @progbits
`;

test('overlapping windows: a displaced window that would cover the previous patch is decided again without it', async () => {
  const linked = assembleAndLink(BACK_TO_BACK, 'static');
  const start = linked.sym('_start');
  const recipe = builtin('unannotated');
  const report = findSites(linked.elf, recipe.match);
  assert.equal(report.sites.map((s) => s.va - start), [5n, 12n, 21n]);
  const { plan } = await planPatches(linked.elf, recipe, report.sites);
  assert.is(plan.patches.length + plan.refused.length, 3);
  // The exit site's first window would take `mov $60,%eax`, which the getpid site's window already
  // moved: it is decided again with windows that start after that patch, and every site is patched.
  assert.is(plan.refused.length, 0, plan.refused.map((r) => r.reason).join(' | '));
  assert.is(plan.patches.length, 3);
  // No two patches share a byte, and the plan passed its own check.
  const sorted = [...plan.patches].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i]!.offset >= sorted[i - 1]!.offset + sorted[i - 1]!.after.length);
  checkPlan(linked.elf, plan);
});

test('overlapping windows: the same site given twice is patched once, the second refused with a reason', async () => {
  const { elf } = await planFile(goldenFixtures().static.elf, 'glibc-rfc');
  const recipe = builtin('glibc-rfc');
  const sites = findSites(elf, recipe.match).sites;
  const { plan } = await planPatches(elf, recipe, [...sites, { ...sites[0]! }]);
  assert.is(plan.patches.length, sites.length);
  assert.is(plan.refused.length, 1);
  assert.match(plan.refused[0]!.reason, /refused: every window overlaps the previous site's patch/);
});

test.run();
