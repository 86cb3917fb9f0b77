import type { ElfFile, FunctionRange } from '@libos/elfkit';
import { Code, FlowControl, IP_BASE, NOP_BIT, OpKind, codeFactsOf, createDecoder, hex, scratch } from './iced.js';

/** What the discovery and planning stages need to know about one decoded instruction. */
export const InstructionKind = {
  other: 0,
  syscall: 1,
  sysenter: 2,
  /** `int $0x80` */
  int80: 3,
  nop: 4,
  /** Bytes iced-x86 cannot decode: the boundaries after it are doubtful. */
  invalid: 5,
  /** Any change of control flow: jmp, jcc, call, ret, other interrupts. */
  branch: 6,
} as const;
export type InstructionKind = (typeof InstructionKind)[keyof typeof InstructionKind];

/** Why a function could not be decoded. */
export type AnalyzeErrorCode = 'ANALYZE_UNMAPPED' | 'ANALYZE_EMPTY' | 'ANALYZE_BUDGET';

/**
 * One function decoded from its start: the instruction boundaries and the branch targets inside it.
 * Offsets are from `start`; arrays are typed and sized to `count` instructions.
 */
export interface FunctionAnalysis {
  readonly start: bigint;
  readonly end: bigint;
  readonly name?: string;
  /** File offset of `start` (-1 when the function is not file-backed). */
  readonly fileOffset: number;
  /** Number of decoded instructions. */
  readonly count: number;
  /** Start of each instruction, as an offset from `start`, ascending. */
  readonly starts: Uint32Array;
  /** Length in bytes of each instruction. */
  readonly lengths: Uint8Array;
  /** An InstructionKind per instruction. */
  readonly kinds: Uint8Array;
  /**
   * Offsets (from `start`) where control may arrive other than by falling through: 0 (the entry) and
   * every target of a direct jmp, jcc, call, loop or xbegin inside the function; sorted, unique.
   */
  readonly branchTargets: Uint32Array;
  /** Whether the function holds an indirect jmp (a jump table or a tail call through a register). */
  readonly hasIndirectJump: boolean;
  /** Offset of the first undecodable instruction, or -1. */
  readonly firstInvalid: number;
  readonly error?: { code: AnalyzeErrorCode; message: string };
}

/** The analysis of a function left undecoded, with why. */
export function undecodedFunction(fn: FunctionRange, code: AnalyzeErrorCode, message: string): FunctionAnalysis {
  return { start: fn.start, end: fn.end, ...(fn.name !== undefined ? { name: fn.name } : {}), fileOffset: -1, ...empty(), error: { code, message } };
}

/**
 * Decodes `fn` once, linearly from its start (a known instruction boundary), and records every
 * instruction's start, length and kind plus the direct branch targets inside the function. Never
 * throws: a function whose bytes are not in the file comes back empty with `error` set.
 */
export function analyzeFunction(elf: Pick<ElfFile, 'bytes' | 'vaToOffset'>, fn: FunctionRange): FunctionAnalysis {
  const size = Number(fn.end - fn.start);
  const fileOffset = elf.vaToOffset(fn.start) ?? -1;
  const base = { start: fn.start, end: fn.end, ...(fn.name !== undefined ? { name: fn.name } : {}), fileOffset };
  if (size <= 0) return { ...base, ...empty(), error: { code: 'ANALYZE_EMPTY', message: `function at ${hex(fn.start)} has no size` } };
  // vaToOffset maps the first byte only; the last byte must map to the same contiguous file range.
  if (fileOffset < 0 || elf.vaToOffset(fn.end - 1n) !== fileOffset + size - 1 || fileOffset + size > elf.bytes.length) {
    return { ...base, ...empty(), error: { code: 'ANALYZE_UNMAPPED', message: `function at ${hex(fn.start)}..${hex(fn.end)} is not file-backed` } };
  }
  return { ...base, ...decodeRange(elf.bytes.subarray(fileOffset, fileOffset + size)) };
}

function empty() {
  return {
    count: 0, starts: new Uint32Array(0), lengths: new Uint8Array(0), kinds: new Uint8Array(0),
    branchTargets: new Uint32Array(0), hasIndirectJump: false, firstInvalid: -1,
  };
}

// iced-x86's Code enum has ~5000 names (and as many reverse entries): V8 keeps it as a dictionary,
// so every `Code.X` in the decode loop would be a hash lookup. The loop compares against these.
const CODE_SYSCALL: number = Code.Syscall;
const CODE_SYSENTER: number = Code.Sysenter;
const CODE_INVALID: number = Code.INVALID;
const CODE_INT_IMM8: number = Code.Int_imm8;
const FLOW_NEXT: number = FlowControl.Next;
const FLOW_INDIRECT: number = FlowControl.IndirectBranch;
const FLOW_JMP: number = FlowControl.UnconditionalBranch;
const FLOW_JCC: number = FlowControl.ConditionalBranch;
const FLOW_CALL: number = FlowControl.Call;
const FLOW_XBEGIN: number = FlowControl.XbeginXabortXend;
const NEAR_BRANCH64: number = OpKind.NearBranch64;

function decodeRange(code: Uint8Array) {
  const size = code.length;
  // An instruction is at least one byte: size bounds the count, so no array ever grows.
  const starts = new Uint32Array(size);
  const lengths = new Uint8Array(size);
  const kinds = new Uint8Array(size);
  let targets = new Uint32Array(16);
  targets[0] = 0;
  let targetCount = 1;
  let hasIndirectJump = false;
  let firstInvalid = -1;
  let count = 0;
  const decoder = createDecoder(code);
  const instr = scratch;
  try {
    let position = 0;
    while (position < size) {
      decoder.decodeOut(instr);
      const length = instr.length;
      const c = instr.code;
      let kind: number = InstructionKind.other;
      if (c === CODE_SYSCALL) kind = InstructionKind.syscall;
      else if (c === CODE_SYSENTER) kind = InstructionKind.sysenter;
      else if (c === CODE_INVALID) {
        kind = InstructionKind.invalid;
        if (firstInvalid < 0) firstInvalid = position;
      } else if (c === CODE_INT_IMM8 && instr.immediate8 === 0x80) kind = InstructionKind.int80;
      else {
        // One lookup for both facts: most of this loop runs before V8 optimises it, where every
        // call counts.
        const facts = codeFactsOf(instr, c);
        const flow = facts & 0xff;
        if ((facts & NOP_BIT) !== 0) kind = InstructionKind.nop;
        else if (flow !== FLOW_NEXT) {
          kind = InstructionKind.branch;
          if (flow === FLOW_INDIRECT) hasIndirectJump = true;
          else if ((flow === FLOW_JMP || flow === FLOW_JCC || flow === FLOW_CALL || flow === FLOW_XBEGIN) && instr.op0Kind === NEAR_BRANCH64) {
            const target = ((instr.nearBranch32 >>> 0) - IP_BASE) | 0;
            if (target >= 0 && target < size) {
              if (targetCount === targets.length) {
                const grown = new Uint32Array(targets.length * 2);
                grown.set(targets);
                targets = grown;
              }
              targets[targetCount++] = target;
            }
          }
        }
      }
      starts[count] = position;
      lengths[count] = length;
      kinds[count] = kind;
      count++;
      position += length;
    }
  } finally {
    decoder.free();
  }
  const sorted = targets.subarray(0, targetCount).sort();
  let unique = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (i === 0 || sorted[i] !== sorted[unique - 1]) sorted[unique++] = sorted[i] as number;
  }
  return {
    count,
    starts: starts.subarray(0, count),
    lengths: lengths.subarray(0, count),
    kinds: kinds.subarray(0, count),
    branchTargets: sorted.slice(0, unique),
    hasIndirectJump,
    firstInvalid,
  };
}

/** Index of the instruction that starts at `va`, or -1 when `va` is not a decoded boundary. */
export function instructionIndexAt(analysis: FunctionAnalysis, va: bigint): number {
  if (va < analysis.start || va >= analysis.end) return -1;
  return instructionIndexAtOffset(analysis, Number(va - analysis.start));
}

/** Index of the instruction that starts `offset` bytes into the function, or -1. */
export function instructionIndexAtOffset(analysis: FunctionAnalysis, offset: number): number {
  const i = lowerBound(analysis.starts, analysis.count, offset);
  return i < analysis.count && analysis.starts[i] === offset ? i : -1;
}

/** Whether a direct branch inside the function lands on `va`. */
export function isBranchTarget(analysis: FunctionAnalysis, va: bigint): boolean {
  if (va < analysis.start || va >= analysis.end) return false;
  const offset = Number(va - analysis.start);
  const targets = analysis.branchTargets;
  const i = lowerBound(targets, targets.length, offset);
  return i < targets.length && targets[i] === offset;
}

function lowerBound(array: Uint32Array, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((array[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
