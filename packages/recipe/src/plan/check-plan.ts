/**
 * The plan's own check, run before a plan is returned: every `before` equals the input's bytes,
 * no two patches overlap, and every patched site decodes (iced-x86) to the instructions its
 * variant means, with its jump landing where the plan says.
 */
import type { ElfFile } from '@libos/elfkit';
import iced from '../iced-module.js';
import { PlanError } from './plan-errors.js';
import type { PatchPlan } from './plan-types.js';

const { Decoder, DecoderOptions, Instruction, Mnemonic } = iced;

/** Plans that passed against a file: planPatches checks before returning, rewriteElf need not again. */
const passed = new WeakMap<PatchPlan, ElfFile>();

export function checkPlan(elf: ElfFile, plan: PatchPlan): void {
  // A plan object is checked once per file (a plan read back from JSON is a new object and is
  // checked again); callers do not edit a plan between planning and writing it.
  if (passed.get(plan) === elf) return;
  let lastEnd = -1;
  const instr = new Instruction();
  const patches = [...plan.patches].sort((a, b) => a.offset - b.offset);
  // Every patch's new bytes in one buffer and one decoder (a decoder copies its bytes into wasm:
  // one a patch was 5 us each), each patch decoded from its own start and stopped at its end.
  const all = new Uint8Array(patches.reduce((n, p) => n + p.after.length, 0));
  const starts: number[] = [];
  let filled = 0;
  for (const p of patches) {
    starts.push(filled);
    all.set(p.after, filled);
    filled += p.after.length;
  }
  const decoder = new Decoder(64, all, DecoderOptions.None);
  try {
    for (const [k, p] of patches.entries()) {
      const where = `site 0x${p.va.toString(16)}`;
      if (p.offset < lastEnd) throw new PlanError('PLAN_CHECK_FAILED', `${where}: overlaps the previous patch`, p.va);
      lastEnd = p.offset + p.after.length;
      if (p.before.length !== p.after.length) throw new PlanError('PLAN_CHECK_FAILED', `${where}: before and after differ in length`, p.va);
      const actual = elf.bytes.subarray(p.offset, p.offset + p.before.length);
      if (!equal(actual, p.before)) throw new PlanError('PLAN_CHECK_FAILED', `${where}: 'before' is not what the file holds`, p.va);
      const expected = expectedMnemonics(p.variant, p.after);
      const end = starts[k]! + p.after.length;
      decoder.position = starts[k]!;
      decoder.ip = p.va;
      const seen: number[] = [];
      let branchTarget: bigint | undefined;
      while (decoder.position < end) {
        decoder.decodeOut(instr);
        // An instruction that runs past the patch's bytes does not decode from them.
        if (instr.isInvalid || decoder.position > end) throw new PlanError('PLAN_CHECK_FAILED', `${where}: the new bytes do not decode`, p.va);
        seen.push(instr.mnemonic);
        if (branchTarget === undefined && instr.mnemonic === Mnemonic.Jmp && instr.isJmpShortOrNear) branchTarget = instr.nearBranchTarget;
        if (instr.mnemonic === Mnemonic.Jmp && instr.isIpRelMemoryOperand) break; // abs64: the .quad after jmp *0(%rip) is data, not code
      }
      const head = seen.filter((m) => m !== Mnemonic.Nop);
      if (!expected.every((m, i) => head[i] === m)) {
        throw new PlanError('PLAN_CHECK_FAILED', `${where}: decodes to ${head.map(name).join(', ')}, expected ${expected.map(name).join(', ')}`, p.va);
      }
      if (p.trampolineVa !== undefined && branchTarget !== undefined && p.variant !== 'abs64' && branchTarget !== p.trampolineVa) {
        // A site jumps either to its own trampoline or to a hop/stub; when it has a trampoline and
        // no hop, the jump must land on it.
        const hop = plan.symbols.some((s) => s.va === branchTarget && s.name.startsWith('libos_hop_'));
        if (!hop) throw new PlanError('PLAN_CHECK_FAILED', `${where}: jumps to 0x${branchTarget.toString(16)}, not to its trampoline`, p.va);
      }
    }
  } finally {
    decoder.free();
    instr.free();
  }
  const sp = plan.startupPatch;
  if (sp !== undefined && !equal(elf.bytes.subarray(sp.offset, sp.offset + sp.before.length), sp.before)) {
    throw new PlanError('PLAN_CHECK_FAILED', `the ${sp.kind} pointer at file offset 0x${sp.offset.toString(16)} is not what the file holds`);
  }
  passed.set(plan, elf);
}

function expectedMnemonics(variant: string, after: Uint8Array): number[] {
  switch (variant) {
    case 'rel32': return [Mnemonic.Lea, Mnemonic.Jmp];
    case 'rel32-site': return [Mnemonic.Jmp];
    case 'abs64': return [Mnemonic.Lea, Mnemonic.Jmp];
    case 'trap': return [after[0] === 0xcc ? Mnemonic.Int3 : Mnemonic.Ud2];
    default: return [Mnemonic.Jmp];
  }
}

function name(m: number): string {
  return (iced.Mnemonic as unknown as Record<number, string>)[m] ?? String(m);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
