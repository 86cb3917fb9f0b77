import type { ElfFile } from '@libos/elfkit';
import { type FunctionAnalysis, analyzeFunction, instructionIndexAt, isBranchTarget } from './analyze-function.js';
import { functionIndexOf } from './function-index.js';
import {
  Code, FlowControl, InstructionInfoOptions, OpAccess, OpKind, Register, createDecoder, flowOf, instructionInfoFactory, scratch,
  type IcedInstruction,
} from './iced.js';

/** How far back the search for the instruction that sets eax goes. */
const MAX_LOOKBACK = 32;

/** The statically known number of a syscall site and the instruction that set it. */
export interface SyscallNumberSource {
  nr: number;
  /** va of the instruction that wrote eax/rax last. */
  writerVa: bigint;
  /** Length of that instruction. */
  writerLength: number;
  /** Whether the writer is `mov $imm32,%eax` immediately before the site (gVisor's systrap pattern). */
  movEaxImmediatelyBefore: boolean;
}

export interface SyscallNumberOptions {
  /** The enclosing function's analysis, when the caller has it (saves decoding it again). */
  analysis?: FunctionAnalysis;
}

/**
 * The syscall number of the site at `va`, where it is known statically: the last write to eax/rax
 * before the site in the same basic block is `mov $imm,%eax`, `mov $imm,%rax` or `xor %eax,%eax`,
 * and no branch target lies in between. Undefined otherwise.
 */
export function syscallNumberAt(elf: Pick<ElfFile, 'bytes' | 'vaToOffset' | 'functions'>, va: bigint, options: SyscallNumberOptions = {}): number | undefined {
  const analysis = options.analysis ?? analysisAt(elf, va);
  return analysis && findSyscallNumber(elf, analysis, va)?.nr;
}

function analysisAt(elf: Pick<ElfFile, 'bytes' | 'vaToOffset' | 'functions'>, va: bigint): FunctionAnalysis | undefined {
  const fn = functionIndexOf(elf).containing(va);
  return fn && analyzeFunction(elf, fn);
}

/**
 * Like syscallNumberAt, with where the number came from. Decodes only the basic block's tail before
 * the site (at most MAX_LOOKBACK instructions), starting at a boundary the analysis recorded.
 */
export function findSyscallNumber(elf: Pick<ElfFile, 'bytes'>, analysis: FunctionAnalysis, va: bigint): SyscallNumberSource | undefined {
  const index = instructionIndexAt(analysis, va);
  if (index <= 0 || analysis.fileOffset < 0) return undefined;
  // The block's first instruction: step back while the instruction we step onto can only be reached by
  // falling through from the one before it (not a branch target).
  let first = index;
  while (first > 0 && index - first < MAX_LOOKBACK && !isBranchTarget(analysis, analysis.start + BigInt(analysis.starts[first] as number))) first--;
  if (first === index) return undefined;
  const from = analysis.starts[first] as number;
  const to = analysis.starts[index] as number;
  const decoder = createDecoder(elf.bytes.subarray(analysis.fileOffset + from, analysis.fileOffset + to));
  let found: SyscallNumberSource | undefined;
  try {
    const instr = scratch;
    for (let i = first; i < index; i++) {
      decoder.decodeOut(instr);
      const c = instr.code;
      if (flowOf(instr, c) !== FlowControl.Next) {
        // A call returns with rax clobbered, a jcc or jmp ends the block: whatever came before is not known here.
        found = undefined;
        continue;
      }
      const nr = immediateToEax(instr, c);
      if (nr !== undefined) {
        found = {
          nr,
          writerVa: analysis.start + BigInt(analysis.starts[i] as number),
          writerLength: analysis.lengths[i] as number,
          movEaxImmediatelyBefore: i === index - 1 && isMovEaxImm32(instr, c),
        };
      } else if (writesRax(instr)) {
        found = undefined;
      }
    }
  } finally {
    decoder.free();
  }
  return found;
}

/** `mov $imm32,%eax` in either encoding (b8+imm32, c7 c0+imm32). */
function isMovEaxImm32(instr: IcedInstruction, c: number): boolean {
  return (c === Code.Mov_r32_imm32 || c === Code.Mov_rm32_imm32) && instr.op0Kind === OpKind.Register && instr.op0Register === Register.EAX;
}

/** The value a `mov $imm,%eax|%rax` or `xor %eax,%eax` leaves in rax, or undefined for anything else. */
function immediateToEax(instr: IcedInstruction, c: number): number | undefined {
  if (isMovEaxImm32(instr, c)) return instr.immediate32 >>> 0;
  if ((c === Code.Mov_rm64_imm32 || c === Code.Mov_r64_imm64) && instr.op0Kind === OpKind.Register && instr.op0Register === Register.RAX) {
    const value = c === Code.Mov_r64_imm64 ? instr.immediate64 : instr.immediate32to64;
    return value >= 0n && value <= 0xffff_ffffn ? Number(value) : undefined;
  }
  if (
    (c === Code.Xor_r32_rm32 || c === Code.Xor_rm32_r32 || c === Code.Xor_r64_rm64 || c === Code.Xor_rm64_r64) &&
    instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Register && instr.op0Register === instr.op1Register &&
    (instr.op0Register === Register.EAX || instr.op0Register === Register.RAX)
  ) {
    return 0;
  }
  return undefined;
}

const RAX_PARTS = new Set<number>([Register.AL, Register.AH, Register.AX, Register.EAX, Register.RAX]);
const WRITES = new Set<number>([OpAccess.Write, OpAccess.CondWrite, OpAccess.ReadWrite, OpAccess.ReadCondWrite]);

/** Whether the instruction writes any part of rax (explicitly or implicitly, per iced-x86). */
function writesRax(instr: IcedInstruction): boolean {
  const info = instructionInfoFactory().infoOptions(instr, InstructionInfoOptions.NoMemoryUsage);
  try {
    let writes = false;
    for (const used of info.usedRegisters()) {
      if (RAX_PARTS.has(used.register) && WRITES.has(used.access)) writes = true;
      used.free();
    }
    return writes;
  } finally {
    info.free();
  }
}
