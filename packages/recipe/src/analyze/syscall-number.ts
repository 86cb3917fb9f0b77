import type { ElfFile } from '@libos/elfkit';
import { type FunctionAnalysis, analyzeFunction, instructionIndexAt, isBranchTarget } from './analyze-function.js';
import { functionIndexOf } from './function-index.js';
import {
  Code, FlowControl, IP_BASE, InstructionInfoOptions, OpKind, RAX_PARTS, Register, WRITE_ACCESSES, decodeInFile, flowOf, instructionInfoFactory, scratch,
  type IcedInstruction,
} from './iced.js';

/** How far back the search for the instruction that sets eax goes. */
const MAX_LOOKBACK = 32;

// Code is a dictionary-mode object of ~10,000 entries: look its members up once, not per instruction.
const MOV_R32_IMM32: number = Code.Mov_r32_imm32;
const MOV_RM32_IMM32: number = Code.Mov_rm32_imm32;
const MOV_RM64_IMM32: number = Code.Mov_rm64_imm32;
const MOV_R64_IMM64: number = Code.Mov_r64_imm64;
const XOR_CODES = new Set<number>([Code.Xor_r32_rm32, Code.Xor_rm32_r32, Code.Xor_r64_rm64, Code.Xor_rm64_r64]);

/** The statically known number of a syscall site and the instruction that set it. */
export interface SyscallNumberSource {
  nr: number;
  /** va of the instruction that wrote eax/rax last. */
  writerVa: bigint;
  /** Length of that instruction. */
  writerLength: number;
  /** Whether the writer is `mov $imm32,%eax` (b8+imm32, 5 bytes) immediately before the site (gVisor's systrap pattern). */
  movEaxImmediatelyBefore: boolean;
}

/** Options of syscallNumberAt. */
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
 * Like syscallNumberAt, with where the number came from. Walks back from the site one decoded
 * boundary at a time (the analysis recorded them), so the usual `mov $nr,%eax; syscall` costs one
 * decode; stops at a branch target, a change of control flow or any other write to rax.
 */
export function findSyscallNumber(elf: Pick<ElfFile, 'bytes'>, analysis: FunctionAnalysis, va: bigint): SyscallNumberSource | undefined {
  const index = instructionIndexAt(analysis, va);
  if (index <= 0 || analysis.fileOffset < 0) return undefined;
  const lowest = Math.max(0, index - MAX_LOOKBACK);
  const instr = scratch;
  for (let i = index - 1; i >= lowest; i--) {
    // Control that can arrive at instruction i+1 from elsewhere may bring another number.
    if (isBranchTarget(analysis, analysis.start + BigInt(analysis.starts[i + 1] as number))) return undefined;
    const at = analysis.starts[i] as number;
    // A boundary the analysis decoded, its length known: decoded in place in the file.
    decodeInFile(elf.bytes, analysis.fileOffset + at, WINDOW_IP, instr);
    const c = instr.code;
    // A call returns with rax clobbered; a jcc or jmp ends the block.
    if (flowOf(instr, c) !== FlowControl.Next) return undefined;
    const nr = immediateToEax(instr, c);
    if (nr !== undefined) {
      return {
        nr,
        writerVa: analysis.start + BigInt(at),
        writerLength: analysis.lengths[i] as number,
        // Only the 5-byte b8+imm32 form: the recipe language promises a 5-byte mov.
        movEaxImmediatelyBefore: i === index - 1 && c === MOV_R32_IMM32,
      };
    }
    if (writesRax(instr)) return undefined;
  }
  return undefined;
}

/** The ip the look-back decodes with: immediates and registers, all it reads, do not depend on it. */
const WINDOW_IP = BigInt(IP_BASE);

/** `mov $imm32,%eax` in either encoding (b8+imm32, c7 c0+imm32). */
function isMovEaxImm32(instr: IcedInstruction, c: number): boolean {
  return (c === MOV_R32_IMM32 || c === MOV_RM32_IMM32) && instr.op0Kind === OpKind.Register && instr.op0Register === Register.EAX;
}

/** The value a `mov $imm,%eax|%rax` or `xor %eax,%eax` leaves in rax, or undefined for anything else. */
export function immediateToEax(instr: IcedInstruction, c: number): number | undefined {
  if (isMovEaxImm32(instr, c)) return instr.immediate32 >>> 0;
  if ((c === MOV_RM64_IMM32 || c === MOV_R64_IMM64) && instr.op0Kind === OpKind.Register && instr.op0Register === Register.RAX) {
    const value = c === MOV_R64_IMM64 ? instr.immediate64 : instr.immediate32to64;
    return value >= 0n && value <= 0xffff_ffffn ? Number(value) : undefined;
  }
  if (
    XOR_CODES.has(c) &&
    instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Register && instr.op0Register === instr.op1Register &&
    (instr.op0Register === Register.EAX || instr.op0Register === Register.RAX)
  ) {
    return 0;
  }
  return undefined;
}


// Whether an instruction writes rax depends only on its Code (implicit operands) and its register
// operands (explicit ones; memory operands only read their base and index). InstructionInfo costs tens
// of microseconds, so its answer is cached under that key.
const writesRaxCache = new Map<number, boolean>();

/** Whether the instruction writes any part of rax (explicitly or implicitly, per iced-x86). */
function writesRax(instr: IcedInstruction): boolean {
  const opCount = instr.opCount;
  let key = -1;
  if (opCount <= 4) {
    key = instr.code;
    let scale = 8192;
    for (let i = 0; i < opCount; i++) {
      key += scale * (instr.opKind(i) === OpKind.Register ? instr.opRegister(i) + 1 : 0);
      scale *= 512;
    }
    const known = writesRaxCache.get(key);
    if (known !== undefined) return known;
  }
  const info = instructionInfoFactory().infoOptions(instr, InstructionInfoOptions.NoMemoryUsage);
  let writes = false;
  try {
    for (const used of info.usedRegisters()) {
      if (RAX_PARTS.has(used.register) && WRITE_ACCESSES.has(used.access)) writes = true;
      used.free();
    }
  } finally {
    info.free();
  }
  if (key >= 0) writesRaxCache.set(key, writes);
  return writes;
}
