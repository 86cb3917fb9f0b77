import type { ElfFile, FunctionRange } from '@libos/elfkit';
import { InstructionKind, instructionIndexAtOffset, type FunctionAnalysis } from './analyze-function.js';
import { functionAfterSite } from './function-index.js';
import {
  Code, FlowControl, IP_BASE, InstructionInfoOptions, OpAccess, OpKind, READ_ACCESSES, Register, decodeInFile, functionDecoder, flowOf, hex,
  LEGACY_PREFIX, instructionInfoFactory, mnemonicName, scratch, seekDecoder, type IcedDecoder, type IcedInstruction,
} from './iced.js';

/** Whether r11 can still be read at an address, and what decided it. */
export interface R11Liveness {
  live: boolean;
  reason: string;
}

export interface R11LiveOptions {
  /** The function that holds `va`; looked up in `elf.functions()` when absent. */
  function?: FunctionRange;
  /** Instructions to decode over all paths before giving up (and answering live). Default 48. */
  maxInstructions?: number;
  /**
   * The function's analysis, when the caller has it: the instructions it shows neither branching
   * nor able to name r11 are stepped over without asking iced-x86 (the answer is the same).
   */
  analysis?: FunctionAnalysis;
}

/**
 * Whether the program can read r11 after a site (`va`: the first byte after its room), so that a
 * stub must leave r11 = rflags there as `syscall` does. Follows every path inside the function
 * (both ways of a conditional branch, direct jumps) until r11 is written whole, a call or `ret`
 * ends its life (it carries no argument and no result in the SysV ABI; `syscall` overwrites it),
 * or something is read from it. Live on a read, a partial write, an indirect branch, leaving the
 * function, undecodable bytes, or running out of budget: only a proof gives `dead`.
 */
export function r11LiveAfter(elf: Pick<ElfFile, 'bytes' | 'vaToOffset' | 'functions'>, va: bigint, options: R11LiveOptions = {}): R11Liveness {
  const code = functionAfterSite(elf, va, options.function);
  if ('reason' in code) return { live: true, reason: code.reason };
  const { fn, size, fileOffset } = code;
  let budget = options.maxInstructions ?? 48;
  // Made when first needed: with the analysis, the instructions left to decode are known
  // boundaries, decoded in place in the file (decodeInFile) without a decoder of the function's own.
  let functionBytes: IcedDecoder | undefined;
  // The analysis of exactly these bytes, or none.
  const a = options.analysis !== undefined && options.analysis.start === fn.start && options.analysis.end === fn.end &&
    options.analysis.fileOffset === fileOffset && options.analysis.error === undefined ? options.analysis : undefined;
  let k = -1; // the analysis's index of the instruction at `position`, when known
  // Addresses are formatted only for a reason, not for every instruction decoded.
  const where = (p: number): string => hex(fn.start + BigInt(p));
  const seen = new Set<number>();
  const work = [Number(va - fn.start)];
  const ends: string[] = [];
  while (work.length > 0) {
    let position = work.pop() as number;
    // The decoder's place, so that straight-line code does not seek before every instruction.
    let decoderAt = -1;
    // One path, straight on until it ends or forks.
    for (;;) {
      if (seen.has(position)) break;
      seen.add(position);
      if (position >= size) return { live: true, reason: `runs out of the function at ${where(position)}` };
      if (budget-- <= 0) return { live: true, reason: 'no decision within the instruction budget' };
      if (a !== undefined) {
        // An instruction that goes straight on and cannot name r8-r15 decides nothing: step over it.
        if (k < 0 || a.starts[k] !== position) k = instructionIndexAtOffset(a, position);
        if (k >= 0) {
          const kind = a.kinds[k];
          const length = a.lengths[k]!;
          if ((kind === InstructionKind.other || kind === InstructionKind.nop) && position + length <= size &&
            !mayNameR8ToR15(elf.bytes, fileOffset + position, length)) {
            position += length;
            k++;
            continue;
          }
        }
      }
      const instr = scratch;
      if (a !== undefined && k >= 0 && a.kinds[k] !== InstructionKind.invalid) {
        // A boundary the analysis decoded whole (so it ends inside the function): decoded in place
        // as the function's own decoder would. Undecodable bytes (an instruction the function's
        // end cuts, say) go to that decoder: the window would see the bytes past the end.
        decodeInFile(elf.bytes, fileOffset + position, BigInt(IP_BASE + position), instr);
        decoderAt = -1;
      } else {
        functionBytes ??= functionDecoder(elf.bytes, fileOffset, size);
        if (decoderAt !== position) seekDecoder(functionBytes, position);
        functionBytes.decodeOut(instr);
        decoderAt = position + instr.length;
      }
      const c = instr.code;
      if (c === Code.INVALID) return { live: true, reason: `undecodable bytes at ${where(position)}` };
      if (position + instr.length > size) return { live: true, reason: `${mnemonicName(instr)} at ${where(position)} crosses the end of the function` };
      if (c === Code.Syscall) {
        ends.push(`syscall at ${where(position)}`);
        break;
      }
      const use = mayNameR8ToR15(elf.bytes, fileOffset + position, instr.length) ? r11Use(instr) : undefined;
      if (use === 'read') return { live: true, reason: `read by ${mnemonicName(instr)} at ${where(position)}` };
      if (use === 'write') {
        ends.push(`written by ${mnemonicName(instr)} at ${where(position)}`);
        break;
      }
      const flow = flowOf(instr, c);
      if (flow === FlowControl.Next) {
        position += instr.length;
        continue;
      }
      if (flow === FlowControl.Return || flow === FlowControl.Call || flow === FlowControl.IndirectCall) {
        ends.push(`${mnemonicName(instr)} at ${where(position)}`);
        break;
      }
      if (flow === FlowControl.UnconditionalBranch || flow === FlowControl.ConditionalBranch) {
        if (instr.op0Kind !== OpKind.NearBranch64) return { live: true, reason: `${mnemonicName(instr)} at ${where(position)} has no near target` };
        const target = ((instr.nearBranch32 >>> 0) - IP_BASE) | 0;
        if (target < 0 || target >= size) return { live: true, reason: `${mnemonicName(instr)} at ${where(position)} leaves the function` };
        work.push(target);
        if (flow === FlowControl.ConditionalBranch) {
          position += instr.length;
          continue;
        }
        break;
      }
      return { live: true, reason: `${mnemonicName(instr)} at ${where(position)} changes control flow` };
    }
  }
  return { live: false, reason: ends.length === 1 ? `dead: ${ends[0]}` : `dead on every path (${ends.length} paths)` };
}

/**
 * Whether an instruction's encoding can name r8-r15 (r11 among them) at all: only with a REX
 * prefix that has R, X or B set, or with a VEX, EVEX or XOP prefix (which carry those bits
 * inverted). Most instructions have neither, and this byte test spares them the half-dozen calls
 * into iced-x86 that reading their operands costs. Conservative: `true` only means "ask iced".
 */
export function mayNameR8ToR15(bytes: Uint8Array, at: number, length: number): boolean {
  const end = at + length;
  // Over the prefixes: the REX that counts is the last one before the opcode, but a CPU also
  // accepts redundant ones (40 4c 89 d8 is mov %r11,%rax): any REX with R, X or B set asks iced.
  for (let i = at; i < end; i++) {
    const b = bytes[i] as number;
    if (b >= 0x40 && b <= 0x4f) {
      if ((b & 0x07) !== 0) return true;
    } else if (LEGACY_PREFIX[b] !== 1) {
      return b === 0xc4 || b === 0xc5 || b === 0x62 || b === 0x8f;
    }
  }
  return false;
}

const R11_WHOLE = new Set<number>([Register.R11, Register.R11D]); // a 32-bit write zero-extends: whole
const R11_ANY = new Set<number>([Register.R11, Register.R11D, Register.R11W, Register.R11L]);

/**
 * How an instruction uses r11: most name no register of it at all, which the operands tell
 * without asking iced's (slow) InstructionInfo; r11 is no instruction's implicit operand in user
 * code but `syscall`'s, which the caller handles.
 */
function r11Use(instr: IcedInstruction): 'read' | 'write' | undefined {
  let mentioned = R11_ANY.has(instr.memoryBase) || R11_ANY.has(instr.memoryIndex);
  for (let i = 0; i < instr.opCount && !mentioned; i++) {
    if (instr.opKind(i) === OpKind.Register && R11_ANY.has(instr.opRegister(i))) mentioned = true;
  }
  if (!mentioned) return undefined;
  const info = instructionInfoFactory().infoOptions(instr, InstructionInfoOptions.None);
  let read = false;
  let whole = false;
  let partial = false;
  try {
    for (const used of info.usedRegisters()) {
      const r = used.register;
      if (R11_ANY.has(r)) {
        if (READ_ACCESSES.has(used.access)) read = true;
        else if (used.access === OpAccess.Write && R11_WHOLE.has(r)) whole = true;
        else partial = true; // a 16/8-bit or conditional write keeps the rest of the old value
      }
      used.free();
    }
    for (const m of info.usedMemory()) {
      if (R11_ANY.has(m.base) || R11_ANY.has(m.index)) read = true;
      m.free();
    }
  } finally {
    info.free();
  }
  if (read || partial) return 'read';
  return whole ? 'write' : undefined;
}
