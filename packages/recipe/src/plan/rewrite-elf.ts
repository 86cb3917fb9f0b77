/** A plan applied to its input: the ElfEdit elfkit's writer takes, and the rewritten bytes. */
import { writeElf, type ElfEdit, type ElfFile } from '@libos/elfkit';
import type { PatchPlan } from './plan-types.js';
import { serializePlan } from './serialize-plan.js';

export function planToElfEdit(plan: PatchPlan, options: { debugFrame?: boolean } = {}): ElfEdit {
  const withFrames = options.debugFrame !== false && plan.debugFrame !== undefined && plan.debugFrame.length > 0;
  return {
    patches: plan.patches.map((p) => ({ offset: p.offset, bytes: p.after })),
    segments: plan.segments.map((s) => ({ name: s.name, va: s.va, flags: s.flags, bytes: s.bytes, memsz: s.memsz })),
    symbols: plan.symbols.map((s) => ({ name: s.name, va: s.va, size: s.size, type: s.type })),
    ...(plan.entryPoint !== undefined ? { entry: plan.entryPoint } : {}),
    ...(withFrames ? { debugFrame: plan.debugFrame } : {}),
    metadata: new TextEncoder().encode(serializePlan({ ...plan, segments: plan.segments.map((s) => ({ ...s, bytes: new Uint8Array(0) })) })),
  };
}

/** The rewritten file: the input with the plan's patches and added segments. */
export function rewriteElf(elf: ElfFile, plan: PatchPlan): Uint8Array {
  // The writer adds one .debug_frame; a file that has its own keeps it, and the added code goes
  // without unwind rows there (symbols still name it).
  return writeElf(elf, planToElfEdit(plan, { debugFrame: elf.section('.debug_frame') === undefined }));
}
