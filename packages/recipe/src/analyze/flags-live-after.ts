import type { ElfFile, FunctionRange } from '@libos/elfkit';
import { functionAfterSite } from './function-index.js';
import {
  ARITHMETIC_FLAGS, Code, FlowControl, IP_BASE, OpKind, functionDecoder, flowOf, hex, mnemonicName, scratch, seekDecoder,
} from './iced.js';

/** Whether the arithmetic flags at an address can still be read, and the instruction that decided it. */
export interface FlagsLiveness {
  live: boolean;
  reason: string;
}

/** Options of flagsLiveAfter. */
export interface FlagsLiveOptions {
  /** The function that holds `va`; looked up in `elf.functions()` when absent. */
  function?: FunctionRange;
  /** How many instructions to follow before giving up (and answering live). Default 32. */
  maxInstructions?: number;
}

/**
 * Whether OF SF ZF AF PF CF are live at `va` (the first byte after a site's room): decodes forward
 * along straight-line code, following direct unconditional jmps inside the function. Dead when all six
 * are written (set, cleared or left undefined included) before any is read, or a `ret`/`call` comes
 * first (the SysV ABI keeps no flags across calls); live on a read, a conditional or indirect branch,
 * an undecodable or unknown instruction, leaving the function, or running out of instructions.
 */
export function flagsLiveAfter(
  elf: Pick<ElfFile, 'bytes' | 'vaToOffset' | 'functions'>,
  va: bigint,
  options: FlagsLiveOptions = {},
): FlagsLiveness {
  const code = functionAfterSite(elf, va, options.function);
  if ('reason' in code) return { live: true, reason: code.reason };
  const { fn, size, fileOffset } = code;
  const max = options.maxInstructions ?? 32;
  const decoder = functionDecoder(elf.bytes, fileOffset, size);
  // Addresses are formatted only for a reason, not for every instruction decoded.
  const where = (p: number): string => hex(fn.start + BigInt(p));
  let position = Number(va - fn.start);
  seekDecoder(decoder, position);
  let written = 0;
  const instr = scratch;
  for (let n = 0; n < max; n++) {
    if (position >= size) return { live: true, reason: `runs out of the function at ${where(position)}` };
    decoder.decodeOut(instr);
    const c = instr.code;
    const name = mnemonicName(instr);
    if (c === Code.INVALID) return { live: true, reason: `undecodable bytes at ${where(position)}` };
    if (position + instr.length > size) return { live: true, reason: `${name} at ${where(position)} crosses the end of the function` };
    const read = instr.rflagsRead & ARITHMETIC_FLAGS & ~written;
    if (read !== 0) return { live: true, reason: `read by ${name} at ${where(position)}` };
    written |= (instr.rflagsWritten | instr.rflagsCleared | instr.rflagsSet | instr.rflagsUndefined) & ARITHMETIC_FLAGS;
    if (written === ARITHMETIC_FLAGS) return { live: false, reason: `written by ${name} at ${where(position)} before any read` };
    const flow = flowOf(instr, c);
    switch (flow) {
      case FlowControl.Next:
        position += instr.length;
        break;
      case FlowControl.Return:
        return { live: false, reason: `killed by ${name} at ${where(position)}` };
      case FlowControl.Call:
      case FlowControl.IndirectCall:
        // syscall and sysenter also count as calls to iced; they keep the flags, so they decide nothing.
        if (c === Code.Syscall || c === Code.Sysenter) return { live: true, reason: `${name} at ${where(position)} keeps the flags` };
        return { live: false, reason: `killed by ${name} at ${where(position)}` };
      case FlowControl.UnconditionalBranch: {
        if (instr.op0Kind !== OpKind.NearBranch64) return { live: true, reason: `far ${name} at ${where(position)}` };
        const target = ((instr.nearBranch32 >>> 0) - IP_BASE) | 0;
        if (target < 0 || target >= size) return { live: true, reason: `${name} at ${where(position)} leaves the function` };
        position = target;
        seekDecoder(decoder, position);
        break;
      }
      case FlowControl.ConditionalBranch:
        return { live: true, reason: `conditional branch ${name} at ${where(position)}` };
      case FlowControl.IndirectBranch:
        return { live: true, reason: `indirect branch ${name} at ${where(position)}` };
      default:
        return { live: true, reason: `${name} at ${where(position)} changes control flow` };
    }
  }
  return { live: true, reason: `no decision within ${max} instructions` };
}
