// Every patched site's `after` decodes (iced-x86) to the instructions its variant means, and its
// jump lands on a trampoline, hop or stub symbol listed in plan.symbols.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf } from '@libos/elfkit';
import { listBuiltinRecipes, type Patch, type PatchPlan, type PlanSymbol } from '@libos/recipe';
import { buildFixtures } from '../../../fixtures/build.js';
import { Mnemonic, decode, goldenFixtures, hex, planBytesAt, planFile, vaHex, type Decoded } from './plan-helpers.js';

/** The seed's `leaq 1f(%rip),%rcx` before a 5-byte jmp, as GNU as encodes it (the listing's 06 is wrong). */
const LEA_RCX_RESUME_12 = '488d0d05000000e9';

function symbolAt(plan: PatchPlan, va: bigint): PlanSymbol | undefined {
  return plan.symbols.find((s) => s.va === va);
}

function onlyFill(rest: Decoded[], label: string, fill: 'nop' | 'int3'): void {
  for (const d of rest) {
    assert.not.ok(d.invalid, `${label}: fill decodes`);
    assert.is(d.mnemonic, fill === 'nop' ? Mnemonic.Nop : Mnemonic.Int3, `${label}: ${d.text} where ${fill} fill was expected`);
  }
}

/** Names of symbols a site's jump may land on. */
const STUB = /^libos_stub_/;
const SITE = /^libos_site_[0-9a-f]+$/;
const HOP = /^libos_hop_[0-9a-f]+$/;

/** Checks one patch; returns the symbol its jump lands on (undefined for trap). */
function checkPatch(plan: PatchPlan, p: Patch, label: string): PlanSymbol | undefined {
  const at = `${label} ${vaHex(p.va)} ${p.variant} [${hex(p.after)}]`;
  assert.is(p.after.length, p.before.length, at);
  const all = decode(p.after, p.va);
  assert.not.ok(all.slice(0, 2).some((d) => d.invalid), `${at}: decodes`);
  const end = p.va + BigInt(p.after.length);
  switch (p.variant) {
    case 'rel32': {
      const [lea, jmp, ...rest] = all;
      assert.ok(lea !== undefined && jmp !== undefined, at);
      assert.is(lea.mnemonic, Mnemonic.Lea, at);
      assert.match(lea.text, /^lea[q]? .*,%rcx$/, at);
      assert.is(lea.ripAddress, p.resumeVa, `${at}: lea's target is the resume address`);
      assert.is(p.resumeVa, end, `${at}: resume = end of the window`);
      if (p.after.length === 12) assert.is(hex(p.after.subarray(0, 8)), LEA_RCX_RESUME_12, at);
      assert.is(jmp.mnemonic, Mnemonic.Jmp, at);
      assert.is(jmp.length, 5, `${at}: jmp rel32`);
      onlyFill(rest, at, 'nop');
      const target = symbolAt(plan, jmp.nearTarget!);
      assert.ok(target !== undefined && (STUB.test(target.name) || SITE.test(target.name)), `${at}: jumps to ${vaHex(jmp.nearTarget!)} (${target?.name ?? 'no symbol'})`);
      if (p.trampolineVa !== undefined) assert.is(jmp.nearTarget, p.trampolineVa, at);
      return target;
    }
    case 'rel32-site':
    case 'displace': {
      const [jmp, ...rest] = all;
      assert.ok(jmp !== undefined && jmp.mnemonic === Mnemonic.Jmp && jmp.length === 5, `${at}: jmp rel32`);
      // The rest of a displaced window (or of a mov+syscall pair) held moved instructions: int3, so a
      // stray jump traps; the rest of a padded site's own room is NOP.
      onlyFill(rest, at, p.variant === 'displace' || /before it joins the site/.test(p.reason) ? 'int3' : 'nop');
      assert.is(jmp.nearTarget, p.trampolineVa, `${at}: lands on its trampoline`);
      const target = symbolAt(plan, jmp.nearTarget!);
      assert.ok(target !== undefined && SITE.test(target.name), `${at}: a libos_site_ symbol at the target`);
      assert.is(p.resumeVa, end, `${at}: resume = end of the window`);
      return target;
    }
    case 'abs64': {
      const [lea, jmp] = all;
      assert.ok(lea !== undefined && jmp !== undefined, at);
      assert.is(lea.mnemonic, Mnemonic.Lea, at);
      assert.is(lea.ripAddress, p.resumeVa, `${at}: lea's target is the resume address`);
      assert.is(p.resumeVa, end, at);
      assert.is(jmp.mnemonic, Mnemonic.Jmp, at);
      let pointerVa: bigint;
      if (jmp.ripAddress !== undefined) {
        // Full form: jmp *0(%rip); .quad target; NOP fill.
        assert.is(hex(p.after.subarray(7, 13)), 'ff2500000000', `${at}: jmp *0(%rip)`);
        pointerVa = jmp.ripAddress;
        const off = Number(pointerVa - p.va);
        assert.is(off, 13, at);
        onlyFill(decode(p.after.subarray(off + 8), pointerVa + 8n), at, 'nop');
        const quad = new DataView(p.after.buffer, p.after.byteOffset + off, 8).getBigUint64(0, true);
        const target = symbolAt(plan, quad);
        assert.ok(target !== undefined && (STUB.test(target.name) || SITE.test(target.name)), `${at}: the pointer names ${vaHex(quad)} (${target?.name ?? 'no symbol'})`);
        return target;
      }
      // Near form (room < 21): a jmp rel32 to a hop that jumps through an absolute pointer.
      assert.is(jmp.length, 5, at);
      onlyFill(all.slice(2), at, 'nop');
      const hop = symbolAt(plan, jmp.nearTarget!);
      assert.ok(hop !== undefined && hop.name === `libos_hop_${p.va.toString(16)}` && HOP.test(hop.name), `${at}: lands on its hop (${hop?.name ?? 'no symbol'})`);
      const hopCode = planBytesAt(plan, hop.va, 14);
      const [far] = decode(hopCode, hop.va, 1);
      assert.is(hex(hopCode.subarray(0, 6)), 'ff2500000000', `${at}: the hop is jmp *0(%rip)`);
      assert.is(far!.ripAddress, hop.va + 6n, at);
      const quad = new DataView(hopCode.buffer, hopCode.byteOffset + 6, 8).getBigUint64(0, true);
      const target = symbolAt(plan, quad);
      assert.ok(target !== undefined && (STUB.test(target.name) || SITE.test(target.name)), `${at}: the hop's pointer names ${vaHex(quad)} (${target?.name ?? 'no symbol'})`);
      return target;
    }
    case 'trap': {
      const [trap, ...rest] = all;
      assert.ok(trap !== undefined && (trap.mnemonic === Mnemonic.Ud2 || trap.mnemonic === Mnemonic.Int3), `${at}: ud2 or int3`);
      onlyFill(rest, at, 'nop');
      // The start stub runs first: the new entry point, or a library's redirected initializer.
      const stubVa = plan.entryPoint ?? (plan.startupPatch !== undefined ? new DataView(plan.startupPatch.after.buffer, plan.startupPatch.after.byteOffset, 8).getBigUint64(0, true) : undefined);
      assert.ok(stubVa !== undefined && symbolAt(plan, stubVa)?.name === 'libos_trap_start', `${at}: the start stub installs the handler`);
      return undefined;
    }
  }
}

async function plansOf(): Promise<{ label: string; plan: PatchPlan }[]> {
  const out: { label: string; plan: PatchPlan }[] = [];
  const fixtures = await buildFixtures();
  const files: [string, ReturnType<typeof readElf>][] = [
    ...(['nonPie', 'pie', 'static', 'staticPie', 'shared'] as const).map((f): [string, ReturnType<typeof readElf>] => [f, readElf(readFileSync(fixtures[f]))]),
    ['golden static', goldenFixtures().static.elf],
    ['golden pie', goldenFixtures().pie.elf],
  ];
  for (const { name } of listBuiltinRecipes()) {
    for (const [file, elf] of files) {
      if (name === 'occlum-style' && !file.startsWith('golden')) continue; // no __occlum_entry
      out.push({ label: `${name} ${file}`, plan: (await planFile(elf, name)).plan });
    }
  }
  return out;
}

test('every patch of every plan decodes to its variant and jumps to a symbol of the plan', async () => {
  const seen = new Set<string>();
  for (const { label, plan } of await plansOf()) {
    for (const p of plan.patches) {
      checkPatch(plan, p, label);
      seen.add(p.variant);
      // The patch covers the site's syscall: the before bytes hold 0f 05 at the window's syscall.
      assert.ok(hex(p.before).includes('0f05'), `${label} ${vaHex(p.va)}: before holds the syscall`);
    }
  }
  assert.equal([...seen].sort(), ['abs64', 'displace', 'rel32', 'rel32-site', 'trap'], 'every variant was checked');
});

test('rel32: 48 8d 0d 05 00 00 00 e9 at each 12-byte annotated site, lea target = site + 12', async () => {
  const { plan } = await planFile(goldenFixtures().static.elf, 'glibc-rfc');
  const twelve = plan.patches.filter((p) => p.after.length === 12);
  assert.is(twelve.length, 3);
  for (const p of twelve) {
    assert.is(hex(p.after.subarray(0, 8)), LEA_RCX_RESUME_12);
    assert.is(p.resumeVa, p.va + 12n);
    const target = checkPatch(plan, p, 'glibc-rfc golden static');
    assert.match(target?.name ?? '', /^libos_stub_lahf_rz/);
  }
  // The 21-byte window: the same lea with disp 0x0e, so rcx is still the end of the window.
  const wide = plan.patches.find((p) => p.after.length === 21)!;
  assert.is(hex(wide.after.subarray(0, 8)), '488d0d0e000000e9');
  assert.is(wide.resumeVa, wide.va + 21n);
});

test('abs64: the full 21-byte form in a wide window, near hops in 12-byte ones (static); both reach the stub', async () => {
  const { plan } = await planFile(goldenFixtures().static.elf, 'glibc-rfc-abs64');
  assert.equal(plan.stats.byVariant, { abs64: 4 });
  const names = plan.patches.map((p) => checkPatch(plan, p, 'glibc-rfc-abs64 golden static')?.name);
  for (const name of names) assert.match(name ?? '', /^libos_stub_lahf_rz/);
  const wide = plan.patches.find((p) => p.after.length === 21)!;
  assert.is(hex(wide.after.subarray(7, 13)), 'ff2500000000', 'jmp *0(%rip)');
  assert.is(plan.symbols.filter((s) => HOP.test(s.name)).length, 3, 'one hop per 12-byte site');
});

test.run();
