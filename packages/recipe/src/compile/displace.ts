/**
 * Displacement: make room for a 5-byte `jmp rel32` over a 2-byte `syscall` by moving neighbouring
 * instructions into the site's trampoline, where they run in their original order around the
 * intercepted call.
 *
 * Never moves an instruction something may jump into: the window's first instruction may be a
 * branch target (the jmp sits there), no other may be. Branch targets come from analyzeFunction
 * (function start, direct jmp/jcc/call targets); functions with an indirect jump (a jump table
 * whose targets are not decoded) and symbol or relocation targets inside the window are refused.
 * Moved instructions must not be branches (their targets would need rewriting) nor syscalls; a
 * RIP-relative memory operand is re-aimed at its absolute target from the new address.
 */
import type { ElfFile, FunctionRange } from '@libos/elfkit';
import iced from 'iced-x86';
import { analyzeFunction, instructionIndexAt, isBranchTarget, InstructionKind, type FunctionAnalysis } from '../analyze/analyze-function.js';
import { functionIndexOf } from '../analyze/function-index.js';
import type { Site } from '../model.js';

const { Decoder, DecoderOptions, Instruction } = iced;

/** An instruction moved out of the window, ready to be re-emitted at a new address. */
export interface MovedInstruction {
  va: bigint;
  bytes: Uint8Array;
  /** For a RIP-relative memory operand: where its disp32 sits in `bytes`, and the absolute address it means. */
  ripRelative?: { dispOffset: number; target: bigint };
  text: string;
}

export interface Displacement {
  windowStart: bigint;
  windowOffset: number;
  windowEnd: bigint;
  before: MovedInstruction[];
  after: MovedInstruction[];
}

const JMP_REL32 = 5;
const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa];

/** Caches one analysis per function across the sites of a plan. */
export class DisplacementFinder {
  private readonly analyses = new Map<bigint, FunctionAnalysis>();
  private readonly guarded: Set<bigint>;
  private readonly instr = new Instruction();

  constructor(private readonly elf: ElfFile) {
    // Addresses something outside the function may reach: symbols and relocation targets.
    this.guarded = new Set<bigint>();
    for (const table of [elf.symbols, elf.dynamicSymbols]) for (const s of table) if (s.value !== 0n) this.guarded.add(s.value);
    for (const r of elf.relocations) if (r.kind === 'rela' && r.type === 8 /* RELATIVE */) this.guarded.add(r.addend);
  }

  /** The window to move for a site, or the reason there is none. */
  find(site: Site): Displacement | string {
    const fn = functionIndexOf(this.elf).containing(site.va);
    if (fn === undefined) return 'the site is in no known function';
    const analysis = this.analysisOf(fn);
    if (analysis.error !== undefined) return analysis.error.message;
    if (analysis.hasIndirectJump) return `${fn.name ?? 'the function'} has an indirect jump whose targets are unknown`;
    const i = instructionIndexAt(analysis, site.va);
    if (i < 0) return 'the site is not on a decoded instruction boundary';
    if (analysis.firstInvalid >= 0 && analysis.firstInvalid <= Number(site.va - fn.start)) return 'undecodable bytes precede the site';
    const reasons: string[] = [];
    // Prefer successors (the site itself stays the window's start), then predecessors.
    for (const take of [{ back: 0 }, { back: 1 }, { back: 2 }, { back: 3 }]) {
      const r = this.tryWindow(analysis, i, take.back);
      if (typeof r !== 'string') return r;
      reasons.push(r);
    }
    return reasons[0] ?? 'no window';
  }

  private tryWindow(a: FunctionAnalysis, site: number, back: number): Displacement | string {
    const first = site - back;
    if (first < 0) return 'not enough instructions before the site';
    let length = 0;
    let last = first;
    for (let k = first; k < a.count; k++) {
      length += a.lengths[k]!;
      last = k;
      if (k >= site && length >= JMP_REL32) break;
    }
    if (length < JMP_REL32) return 'the function ends before 5 bytes';
    const before: MovedInstruction[] = [];
    const after: MovedInstruction[] = [];
    for (let k = first; k <= last; k++) {
      const va = a.start + BigInt(a.starts[k]!);
      if (k !== first && isBranchTarget(a, va)) return `the instruction at 0x${va.toString(16)} is a branch target`;
      if (k !== first && this.guarded.has(va)) return `the instruction at 0x${va.toString(16)} is a symbol or relocation target`;
      if (k === site) continue;
      const kind = a.kinds[k];
      if (kind !== InstructionKind.other && kind !== InstructionKind.nop) return `the instruction at 0x${va.toString(16)} is a branch, a system call or undecodable`;
      const moved = this.describe(a, k, va);
      if (typeof moved === 'string') return moved;
      (k < site ? before : after).push(moved);
    }
    const windowStart = a.start + BigInt(a.starts[first]!);
    return {
      windowStart,
      windowOffset: a.fileOffset + a.starts[first]!,
      windowEnd: windowStart + BigInt(length),
      before,
      after,
    };
  }

  private describe(a: FunctionAnalysis, k: number, va: bigint): MovedInstruction | string {
    const offset = a.fileOffset + a.starts[k]!;
    const bytes = this.elf.bytes.slice(offset, offset + a.lengths[k]!);
    if (ENDBR64.every((b, j) => bytes[j] === b)) return `endbr64 at 0x${va.toString(16)} must stay where it is (CET)`;
    const decoder = new Decoder(64, bytes, DecoderOptions.None);
    decoder.ip = va;
    try {
      decoder.decodeOut(this.instr);
      const text = this.instr.toString();
      if (!this.instr.isIpRelMemoryOperand) return { va, bytes, text };
      const c = decoder.getConstantOffsets(this.instr);
      const dispOffset = c.displacementOffset;
      c.free();
      if (dispOffset === 0) return `cannot find the displacement of ${text}`;
      return { va, bytes, ripRelative: { dispOffset, target: this.instr.ipRelMemoryAddress }, text };
    } finally {
      decoder.free();
    }
  }

  private analysisOf(fn: FunctionRange): FunctionAnalysis {
    let a = this.analyses.get(fn.start);
    if (a === undefined) {
      a = analyzeFunction(this.elf, fn);
      this.analyses.set(fn.start, a);
    }
    return a;
  }
}

/** Re-emits a moved instruction at the assembler's position, re-aiming a RIP-relative operand. */
export function emitMoved(a: import('@libos/encoder').Assembler, m: MovedInstruction): void {
  if (m.ripRelative === undefined) {
    a.bytes(m.bytes);
    return;
  }
  const { dispOffset, target } = m.ripRelative;
  // A rel32 field holds target + addend - its own address; the CPU adds the disp32 to the end of
  // the instruction, which lies (length - dispOffset) bytes past the field.
  a.bytes(m.bytes.subarray(0, dispOffset));
  a.rel32(target, -(m.bytes.length - dispOffset));
  a.bytes(m.bytes.subarray(dispOffset + 4));
}
