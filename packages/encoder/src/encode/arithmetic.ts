import type { Gpr, OperandSize } from '../registers.js';
import { fitsSigned, truncateSigned } from './immediate.js';
import { encodeInstruction } from './instruction.js';
import type { FixedItem } from './item.js';
import {
  commonSize, expectGpr, expectImmediate, expectRm, immediateRange, isAccumulator, sizeMismatch,
  unsupported, type Operand, type Site,
} from './operand-checks.js';

/** The eight classic ALU operations, by their /digit and opcode row. */
export const ALU = { add: 0, or: 1, adc: 2, sbb: 3, and: 4, sub: 5, xor: 6, cmp: 7 } as const;
export type AluOp = keyof typeof ALU;

function immSizeOf(size: OperandSize): 1 | 2 | 4 {
  return size === 8 ? 1 : size === 16 ? 2 : 4;
}

/** The immediate of a 16/32/64-bit form, read modulo the width (64: must fit a signed imm32). */
function operandImmediate(site: Site, src: Operand, size: OperandSize, operand: number): bigint {
  const v = expectImmediate(site, src, operand);
  const value = truncateSigned(v, size);
  if (value === undefined || (size === 64 && !fitsSigned(value, 32))) throw immediateRange(site, operand, v, size === 64 ? 32 : size);
  return value;
}

/**
 * add/or/adc/sbb/and/sub/xor/cmp. Register-register uses the store form (01 /r), as GNU as
 * does; immediates use imm8 when the value fits, else the accumulator short form, else imm32.
 */
export function encodeAlu(site: Site, op: AluOp, dst: Operand, src: Operand): FixedItem {
  const n = ALU[op];
  const d = expectRm(site, dst, 0);
  if (typeof src === 'number' || typeof src === 'bigint') {
    const size = commonSize(site, d, undefined);
    const value = operandImmediate(site, src, size, 1);
    if (size === 8) {
      if (isAccumulator(d)) return encodeInstruction(site, { opcode: [(n << 3) | 4], imm: { value, size: 1 } });
      return encodeInstruction(site, { opcode: [0x80], reg: n, rm: { op: d, operand: 0 }, imm: { value, size: 1 } });
    }
    if (fitsSigned(value, 8)) {
      return encodeInstruction(site, { opsize: size, opcode: [0x83], reg: n, rm: { op: d, operand: 0 }, imm: { value, size: 1 } });
    }
    if (isAccumulator(d)) return encodeInstruction(site, { opsize: size, opcode: [(n << 3) | 5], imm: { value, size: immSizeOf(size) } });
    return encodeInstruction(site, { opsize: size, opcode: [0x81], reg: n, rm: { op: d, operand: 0 }, imm: { value, size: immSizeOf(size) } });
  }
  const s = expectRm(site, src, 1);
  const size = commonSize(site, d, s);
  const w = size === 8 ? 0 : 1;
  if (s.kind === 'gpr') {
    return encodeInstruction(site, { opsize: size, opcode: [(n << 3) | w], reg: { reg: s, operand: 1 }, rm: { op: d, operand: 0 } });
  }
  if (d.kind === 'gpr') {
    return encodeInstruction(site, { opsize: size, opcode: [(n << 3) | 2 | w], reg: { reg: d, operand: 0 }, rm: { op: s, operand: 1 } });
  }
  throw unsupported(site, `${site.mnemonic} cannot take two memory operands`);
}

/** test r/m, r; test r/m, imm (a8/a9 for the accumulator, no imm8 form). */
export function encodeTest(site: Site, dst: Operand, src: Operand): FixedItem {
  const d = expectRm(site, dst, 0);
  if (typeof src === 'number' || typeof src === 'bigint') {
    const size = commonSize(site, d, undefined);
    const value = operandImmediate(site, src, size, 1);
    const w = size === 8 ? 0 : 1;
    if (isAccumulator(d)) return encodeInstruction(site, { opsize: size, opcode: [0xa8 | w], imm: { value, size: immSizeOf(size) } });
    return encodeInstruction(site, { opsize: size, opcode: [0xf6 | w], reg: 0, rm: { op: d, operand: 0 }, imm: { value, size: immSizeOf(size) } });
  }
  const s = expectRm(site, src, 1);
  const size = commonSize(site, d, s);
  const w = size === 8 ? 0 : 1;
  // test is symmetric: the register goes in ModRM.reg whichever side it was written on.
  if (s.kind === 'gpr') return encodeInstruction(site, { opsize: size, opcode: [0x84 | w], reg: { reg: s, operand: 1 }, rm: { op: d, operand: 0 } });
  if (d.kind === 'gpr') return encodeInstruction(site, { opsize: size, opcode: [0x84 | w], reg: { reg: d, operand: 0 }, rm: { op: s, operand: 1 } });
  throw unsupported(site, 'test cannot take two memory operands');
}

/** One-operand group 3/4/5 forms: inc, dec, not, neg, mul, imul (one operand), div, idiv. */
export const UNARY = {
  inc: [0xfe, 0], dec: [0xfe, 1], not: [0xf6, 2], neg: [0xf6, 3], mul: [0xf6, 4], imul: [0xf6, 5], div: [0xf6, 6], idiv: [0xf6, 7],
} as const;
export type UnaryOp = keyof typeof UNARY;

export function encodeUnary(site: Site, op: UnaryOp, dst: Operand): FixedItem {
  const d = expectRm(site, dst, 0);
  const size = commonSize(site, d, undefined);
  const [opcode, digit] = UNARY[op];
  return encodeInstruction(site, { opsize: size, opcode: [opcode | (size === 8 ? 0 : 1)], reg: digit, rm: { op: d, operand: 0 } });
}

/** Shifts and rotates, by their /digit. */
export const SHIFT = { rol: 0, ror: 1, rcl: 2, rcr: 3, shl: 4, sal: 4, shr: 5, sar: 7 } as const;
export type ShiftOp = keyof typeof SHIFT;

/** shl r/m, 1 | cl | imm8. A count of 1 gets the d1 form, as GNU as does. */
export function encodeShift(site: Site, op: ShiftOp, dst: Operand, count: Operand): FixedItem {
  const d = expectRm(site, dst, 0);
  const size = commonSize(site, d, undefined);
  const w = size === 8 ? 0 : 1;
  const digit = SHIFT[op];
  if (typeof count === 'number' || typeof count === 'bigint') {
    const v = expectImmediate(site, count, 1);
    if (v < 0n || v > 255n) throw immediateRange(site, 1, v, 8);
    if (v === 1n) return encodeInstruction(site, { opsize: size, opcode: [0xd0 | w], reg: digit, rm: { op: d, operand: 0 } });
    return encodeInstruction(site, { opsize: size, opcode: [0xc0 | w], reg: digit, rm: { op: d, operand: 0 }, imm: { value: v, size: 1 } });
  }
  const c = expectGpr(site, count, 1);
  if (c.id !== 1 || c.size !== 8) throw sizeMismatch(site, 1, 'a shift count register must be cl');
  return encodeInstruction(site, { opsize: size, opcode: [0xd2 | w], reg: digit, rm: { op: d, operand: 0 } });
}

/** imul r/m; imul r, r/m; imul r, imm; imul r, r/m, imm (imm8 when it fits). */
export function encodeImul(site: Site, a: Operand, b?: Operand, c?: Operand): FixedItem {
  if (b === undefined) return encodeUnary(site, 'imul', a);
  const d = expectGpr(site, a, 0);
  if (d.size === 8) throw sizeMismatch(site, 0, 'imul has no 8-bit two- or three-operand form');
  let src: Gpr | import('../operands.js').Memory;
  let imm: Operand | undefined;
  let immOperand = 2;
  if (typeof b === 'number' || typeof b === 'bigint') {
    src = d;
    imm = b;
    immOperand = 1;
  } else {
    src = expectRm(site, b, 1);
    imm = c;
  }
  const size = commonSize(site, d, src);
  if (imm === undefined) {
    return encodeInstruction(site, { opsize: size, opcode: [0x0f, 0xaf], reg: { reg: d, operand: 0 }, rm: { op: src, operand: 1 } });
  }
  const value = operandImmediate(site, imm, size, immOperand);
  if (fitsSigned(value, 8)) {
    return encodeInstruction(site, { opsize: size, opcode: [0x6b], reg: { reg: d, operand: 0 }, rm: { op: src, operand: 1 }, imm: { value, size: 1 } });
  }
  return encodeInstruction(site, { opsize: size, opcode: [0x69], reg: { reg: d, operand: 0 }, rm: { op: src, operand: 1 }, imm: { value, size: immSizeOf(size) } });
}

/** setcc r/m8. */
export function encodeSetcc(site: Site, cc: number, dst: Operand): FixedItem {
  const d = expectRm(site, dst, 0);
  if (d.size !== undefined && d.size !== 8) throw sizeMismatch(site, 0, 'setcc writes an 8-bit operand');
  return encodeInstruction(site, { opcode: [0x0f, 0x90 | cc], reg: 0, rm: { op: d, operand: 0 } });
}

/** cmovcc r, r/m (16/32/64 bits). */
export function encodeCmovcc(site: Site, cc: number, dst: Operand, src: Operand): FixedItem {
  const d = expectGpr(site, dst, 0);
  const s = expectRm(site, src, 1);
  const size = commonSize(site, d, s);
  if (size === 8) throw sizeMismatch(site, 0, 'cmovcc has no 8-bit form');
  return encodeInstruction(site, { opsize: size, opcode: [0x0f, 0x40 | cc], reg: { reg: d, operand: 0 }, rm: { op: s, operand: 1 } });
}
