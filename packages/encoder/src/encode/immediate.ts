import { EncoderError } from '../errors.js';
import type { Immediate } from '../operands.js';

const TWO64 = 1n << 64n;

/** The immediate as a bigint; numbers must be safe integers. */
export function immediateValue(v: Immediate, mnemonic: string, operandIndex: number, index: number): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) {
    throw new EncoderError('ENC_IMMEDIATE_RANGE', `immediate ${v} is not a safe integer`, mnemonic, operandIndex, index);
  }
  return BigInt(v);
}

/** Whether v fits `bits` as a signed integer. */
export function fitsSigned(v: bigint, bits: number): boolean {
  const half = 1n << BigInt(bits - 1);
  return v >= -half && v < half;
}

/**
 * Reads v as an operand of `bits` width the way GNU as does: any value from -2^(bits-1) to
 * 2^bits - 1 is accepted and taken modulo 2^bits, then returned sign-extended. So
 * `add eax, 0xffffffff` is `add eax, -1` and gets the imm8 form, as with `as`.
 * Returns undefined when v does not fit.
 */
export function truncateSigned(v: bigint, bits: number): bigint | undefined {
  const full = 1n << BigInt(bits);
  if (v < -(full >> 1n) || v >= full) {
    // 64-bit operands also accept the unsigned spelling of a negative number.
    if (bits === 64 && v >= 0n && v < TWO64) return BigInt.asIntN(64, v);
    return undefined;
  }
  return BigInt.asIntN(bits, v);
}

/** Writes v little-endian into `size` bytes of out at `at` (two's complement). */
export function writeLe(out: Uint8Array, at: number, v: bigint, size: number): void {
  // Two 32-bit halves: a fixed number of BigInt operations, none per byte.
  const x = BigInt.asUintN(size * 8, v);
  let lo = Number(size <= 4 ? x : BigInt.asUintN(32, x));
  const n = size <= 4 ? size : 4;
  for (let i = 0; i < n; i++) { out[at + i] = lo & 0xff; lo >>>= 8; }
  if (size <= 4) return;
  let hi = Number(x >> 32n);
  for (let i = 4; i < size; i++) { out[at + i] = hi & 0xff; hi >>>= 8; }
}
