import type { Memory } from '../operands.js';
import type { Gpr } from '../registers.js';
import { fitsSigned, truncateSigned } from './immediate.js';
import { encodeInstruction } from './instruction.js';
import type { FixedItem } from './item.js';
import {
  commonSize, expectGpr, expectImmediate, expectMemory, expectRm, immediateRange,
  isAccumulator, sizeMismatch, unsupported, type Operand, type Site,
} from './operand-checks.js';

/** mov: the register/memory/immediate forms, with the immediate widths GNU as picks. */
export function encodeMov(site: Site, dst: Operand, src: Operand): FixedItem {
  const d = expectRm(site, dst, 0);
  if (typeof src === 'number' || typeof src === 'bigint') {
    const size = commonSize(site, d, undefined);
    const v = expectImmediate(site, src, 1);
    const value = truncateSigned(v, size);
    if (value === undefined) throw immediateRange(site, 1, v, size);
    if (d.kind === 'gpr') {
      if (size === 64) {
        // as keeps `mov r64, imm` in the sign-extended imm32 form when it fits, else movabs.
        if (fitsSigned(value, 32)) {
          return encodeInstruction(site, { opsize: 64, opcode: [0xc7], reg: 0, rm: { op: d, operand: 0 }, imm: { value, size: 4 } });
        }
        return encodeInstruction(site, { opsize: 64, opcode: [0xb8], opreg: { reg: d, operand: 0 }, imm: { value, size: 8 } });
      }
      const immSize = size === 8 ? 1 : size === 16 ? 2 : 4;
      return encodeInstruction(site, { opsize: size, opcode: [size === 8 ? 0xb0 : 0xb8], opreg: { reg: d, operand: 0 }, imm: { value, size: immSize } });
    }
    if (size === 64 && !fitsSigned(value, 32)) throw immediateRange(site, 1, v, 32);
    const immSize = size === 8 ? 1 : size === 16 ? 2 : 4;
    return encodeInstruction(site, { opsize: size, opcode: [size === 8 ? 0xc6 : 0xc7], reg: 0, rm: { op: d, operand: 0 }, imm: { value, size: immSize } });
  }
  const s = expectRm(site, src, 1);
  const size = commonSize(site, d, s);
  const w = size === 8 ? 0 : 1;
  if (s.kind === 'gpr') {
    return encodeInstruction(site, { opsize: size, opcode: [0x88 | w], reg: { reg: s, operand: 1 }, rm: { op: d, operand: 0 } });
  }
  if (d.kind === 'gpr') {
    return encodeInstruction(site, { opsize: size, opcode: [0x8a | w], reg: { reg: d, operand: 0 }, rm: { op: s, operand: 1 } });
  }
  throw unsupported(site, 'mov cannot take two memory operands');
}

/** movzx / movsx (and movsxd for a 32-bit source, which Intel syntax also spells movsx). */
export function encodeExtend(site: Site, signed: boolean, dst: Operand, src: Operand): FixedItem {
  const d = expectGpr(site, dst, 0);
  const s = expectRm(site, src, 1);
  if (s.size === undefined) throw sizeMismatch(site, 1, 'the source width is unknown: use byte/word/dword');
  if (d.size === 8 || s.size >= d.size) throw sizeMismatch(site, 1, `cannot extend ${s.size} bits to ${d.size}`);
  if (s.size === 32) {
    if (!signed) throw sizeMismatch(site, 1, 'movzx has no 32-bit source form (a 32-bit mov zero-extends)');
    return encodeInstruction(site, { opsize: 64, opcode: [0x63], reg: { reg: d, operand: 0 }, rm: { op: s, operand: 1 } });
  }
  const op = (signed ? 0xbe : 0xb6) | (s.size === 16 ? 1 : 0);
  return encodeInstruction(site, { opsize: d.size, opcode: [0x0f, op], reg: { reg: d, operand: 0 }, rm: { op: s, operand: 1 } });
}

/** movsxd r64, r/m32. */
export function encodeMovsxd(site: Site, dst: Operand, src: Operand): FixedItem {
  const d = expectGpr(site, dst, 0);
  const s = expectRm(site, src, 1);
  if (d.size !== 64) throw sizeMismatch(site, 0, 'movsxd needs a 64-bit destination');
  if (s.size !== undefined && s.size !== 32) throw sizeMismatch(site, 1, 'movsxd needs a 32-bit source');
  return encodeInstruction(site, { opsize: 64, opcode: [0x63], reg: { reg: d, operand: 0 }, rm: { op: s, operand: 1 } });
}

/** lea r, m: the memory width is irrelevant. */
export function encodeLea(site: Site, dst: Operand, src: Operand): FixedItem {
  const d = expectGpr(site, dst, 0);
  const m = expectMemory(site, src, 1);
  if (d.size === 8) throw sizeMismatch(site, 0, 'lea has no 8-bit form');
  return encodeInstruction(site, { opsize: d.size, opcode: [0x8d], reg: { reg: d, operand: 0 }, rm: { op: m, operand: 1 } });
}

/**
 * xchg. As GNU as does: the one-byte 90+r form when one side is the accumulator (except
 * `xchg eax, eax`, which 90 would turn into a plain nop that does not zero-extend).
 */
export function encodeXchg(site: Site, a: Operand, b: Operand): FixedItem {
  const x = expectRm(site, a, 0);
  const y = expectRm(site, b, 1);
  const size = commonSize(site, x, y);
  if (x.kind === 'gpr' && y.kind === 'gpr') {
    // GNU as spells `xchg rax, rax` as a bare 90 (it is the architectural nop either way).
    if (size === 64 && x.id === 0 && y.id === 0) return encodeInstruction(site, { opcode: [0x90] });
    if (size !== 8 && (isAccumulator(x) || isAccumulator(y)) && !(size === 32 && x.id === 0 && y.id === 0)) {
      const other = isAccumulator(x) ? y : x;
      return encodeInstruction(site, { opsize: size, opcode: [0x90], opreg: { reg: other, operand: other === x ? 0 : 1 } });
    }
    return encodeInstruction(site, { opsize: size, opcode: [size === 8 ? 0x86 : 0x87], reg: { reg: y, operand: 1 }, rm: { op: x, operand: 0 } });
  }
  if (x.kind === 'gpr') {
    return encodeInstruction(site, { opsize: size, opcode: [size === 8 ? 0x86 : 0x87], reg: { reg: x, operand: 0 }, rm: { op: y, operand: 1 } });
  }
  if (y.kind === 'gpr') {
    return encodeInstruction(site, { opsize: size, opcode: [size === 8 ? 0x86 : 0x87], reg: { reg: y, operand: 1 }, rm: { op: x, operand: 0 } });
  }
  throw unsupported(site, 'xchg cannot take two memory operands');
}

/** push r64/r16, m64/m16, imm8/imm32 (sign-extended to 64 bits). */
export function encodePush(site: Site, src: Operand): FixedItem {
  if (typeof src === 'number' || typeof src === 'bigint') {
    const v = expectImmediate(site, src, 0);
    const value = truncateSigned(v, 64);
    if (value === undefined || !fitsSigned(value, 32)) throw immediateRange(site, 0, v, 32);
    if (fitsSigned(value, 8)) return encodeInstruction(site, { opcode: [0x6a], imm: { value, size: 1 } });
    return encodeInstruction(site, { opcode: [0x68], imm: { value, size: 4 } });
  }
  return encodePushPop(site, src, true);
}

/** pop r64/r16, m64/m16. */
export function encodePop(site: Site, dst: Operand): FixedItem {
  return encodePushPop(site, dst, false);
}

function encodePushPop(site: Site, op: Operand, push: boolean): FixedItem {
  const x = expectRm(site, op, 0);
  const size = x.size ?? 64;
  if (size !== 64 && size !== 16) throw sizeMismatch(site, 0, `${site.mnemonic} takes a 64-bit or 16-bit operand`);
  // 64 bits is the default stack width: no REX.W.
  const opsize = size === 16 ? 16 : undefined;
  if (x.kind === 'gpr') {
    return encodeInstruction(site, { opsize, opcode: [push ? 0x50 : 0x58], opreg: { reg: x as Gpr, operand: 0 } });
  }
  return encodeInstruction(site, {
    opsize, opcode: [push ? 0xff : 0x8f], reg: push ? 6 : 0, rm: { op: x as Memory, operand: 0 },
  });
}

