import type { ElfFile } from '@libos/elfkit';
import type { MovedInstruction } from '../compile/displace.js';
import {
  Code, FlowControl, IP_BASE, InstructionInfoOptions, Register, WRITE_ACCESSES, createDecoder, flowOf, hex,
  instructionInfoFactory, mnemonicName, scratch,
} from './iced.js';

/**
 * What an entry in the binary does to the state a stub must keep, found by decoding it: the stub
 * then saves only what the entry can change, and copies a short straight-line entry in place of
 * the call (DynamoRIO's clean-call analysis and Pin's inlining of analysis routines do the same).
 */
export interface EntryEffects {
  writesFlags: boolean;
  writesRcx: boolean;
  writesR11: boolean;
  /** Moves rsp or uses memory through it. */
  usesStack: boolean;
  /** The body without its `ret`, where it can run in the stub instead of being called. */
  inline?: MovedInstruction[];
  /** What the analysis found, for the plan's reasons. */
  reason: string;
}

/** An entry nothing is known of: it may do all the hook convention allows (rcx, r11, flags, stack). */
export function opaqueEntry(reason: string): EntryEffects {
  return { writesFlags: true, writesRcx: true, writesR11: true, usesStack: true, reason };
}

/** Longest body copied in place of a call. */
const MAX_INLINE = 8;
/** Instructions decoded before the entry counts as opaque. */
const MAX_DECODE = 32;

const RCX_PARTS = new Set<number>([Register.RCX, Register.ECX, Register.CX, Register.CL, Register.CH]);
const R11_PARTS = new Set<number>([Register.R11, Register.R11D, Register.R11W, Register.R11L]);
const RSP_PARTS = new Set<number>([Register.RSP, Register.ESP, Register.SP, Register.SPL]);

/**
 * Decodes the entry at `va` as straight-line code up to its `ret`. An entry with a branch, a call,
 * a `ret imm`, an instruction that uses rsp or undecodable bytes within its first instructions is
 * opaque: only a complete proof narrows what the stub keeps.
 */
export function entryEffects(elf: Pick<ElfFile, 'bytes' | 'vaToOffset'>, va: bigint): EntryEffects {
  const offset = elf.vaToOffset(va);
  if (offset === undefined) return opaqueEntry(`the entry at ${hex(va)} is not in the file`);
  const decoder = createDecoder(elf.bytes.subarray(offset, Math.min(elf.bytes.length, offset + MAX_DECODE * 15)));
  // Addresses are formatted only for a reason, not for every instruction decoded.
  const where = (p: number): string => hex(va + BigInt(p));
  const body: MovedInstruction[] = [];
  let writesFlags = false;
  let writesRcx = false;
  let writesR11 = false;
  try {
    let position = 0;
    for (let n = 0; n < MAX_DECODE; n++) {
      const instr = scratch;
      decoder.decodeOut(instr);
      if (instr.code === Code.INVALID) return opaqueEntry(`undecodable bytes at ${where(position)} in the entry`);
      const name = mnemonicName(instr);
      const flow = flowOf(instr, instr.code);
      if (flow === FlowControl.Return) {
        if (instr.code !== Code.Retnq) return opaqueEntry(`${name} at ${where(position)} is not a plain ret`);
        const effects = { writesFlags, writesRcx, writesR11, usesStack: false };
        const written = [writesFlags && 'flags', writesRcx && 'rcx', writesR11 && 'r11'].filter(Boolean).join(', ') || 'none of flags, rcx, r11';
        const inline = body.length <= MAX_INLINE && !writesRcx && !writesR11;
        return {
          ...effects,
          ...(inline ? { inline: body } : {}),
          reason: `entry at ${hex(va)}: ${body.length} instructions and ret, no stack; writes ${written}${inline ? '; copied into the stub' : ''}`,
        };
      }
      if (instr.code === Code.Syscall) {
        // The kernel sets rcx and r11 and keeps the flags: a passthrough entry needs no flag save.
        writesRcx = true;
        writesR11 = true;
        body.push({ va: va + BigInt(position), bytes: elf.bytes.slice(offset + position, offset + position + 2), text: name });
        position += instr.length;
        continue;
      }
      if (flow !== FlowControl.Next) return opaqueEntry(`${name} at ${where(position)} in the entry changes control flow`);
      const info = instructionInfoFactory().infoOptions(instr, InstructionInfoOptions.None);
      let usesStack = false;
      try {
        for (const used of info.usedRegisters()) {
          const r = used.register;
          if (RSP_PARTS.has(r)) usesStack = true;
          if (WRITE_ACCESSES.has(used.access)) {
            if (RCX_PARTS.has(r)) writesRcx = true;
            if (R11_PARTS.has(r)) writesR11 = true;
          }
          used.free();
        }
        for (const m of info.usedMemory()) {
          if (RSP_PARTS.has(m.base) || RSP_PARTS.has(m.index)) usesStack = true;
          m.free();
        }
      } finally {
        info.free();
      }
      if (usesStack) return opaqueEntry(`${name} at ${where(position)} in the entry uses the stack`);
      if (instr.rflagsModified !== 0) writesFlags = true;
      const bytes = elf.bytes.slice(offset + position, offset + position + instr.length);
      if (instr.isIpRelMemoryOperand) {
        const c = decoder.getConstantOffsets(instr);
        const dispOffset = c.displacementOffset;
        c.free();
        if (dispOffset === 0) return opaqueEntry(`cannot find the displacement of ${name} at ${where(position)}`);
        // The decoder's ip is IP_BASE at the entry's first byte.
        body.push({ va: va + BigInt(position), bytes, ripRelative: { dispOffset, target: va + instr.ipRelMemoryAddress - BigInt(IP_BASE) }, text: name });
      } else {
        body.push({ va: va + BigInt(position), bytes, text: name });
      }
      position += instr.length;
    }
    return opaqueEntry(`no ret within the entry's first ${MAX_DECODE} instructions`);
  } finally {
    decoder.free();
  }
}

