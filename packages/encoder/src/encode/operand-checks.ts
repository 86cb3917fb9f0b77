import { EncoderError } from '../errors.js';
import { isGpr, isImmediate, isMemory, type Immediate, type Memory } from '../operands.js';
import type { Gpr, OperandSize } from '../registers.js';
import { immediateValue } from './immediate.js';

/** The instruction being encoded: its mnemonic and index, for error values. */
export interface Site {
  readonly mnemonic: string;
  readonly index: number;
}

/** Any operand an instruction method accepts. */
export type Operand = Gpr | Memory | Immediate;

export function sizeMismatch(site: Site, operand: number, message: string): EncoderError {
  return new EncoderError('ENC_OPERAND_SIZE_MISMATCH', message, site.mnemonic, operand, site.index);
}

export function invalidOperand(site: Site, operand: number, message: string): EncoderError {
  return new EncoderError('ENC_INVALID_OPERAND', message, site.mnemonic, operand, site.index);
}

export function unsupported(site: Site, message: string): EncoderError {
  return new EncoderError('ENC_UNSUPPORTED_FORM', message, site.mnemonic, undefined, site.index);
}

export function immediateRange(site: Site, operand: number, value: bigint, bits: number): EncoderError {
  return new EncoderError('ENC_IMMEDIATE_RANGE', `immediate ${value} does not fit ${bits} bits`, site.mnemonic, operand, site.index);
}

export function describe(op: unknown): string {
  if (isGpr(op)) return op.name;
  if (isMemory(op)) return 'memory';
  if (isImmediate(op)) return 'immediate';
  return typeof op;
}

/** Throws unless op is a register or memory operand (the r/m of a ModRM form). */
export function expectRm(site: Site, op: unknown, operand: number): Gpr | Memory {
  if (isGpr(op) || isMemory(op)) return op;
  throw invalidOperand(site, operand, `expected a register or memory operand, got ${describe(op)}`);
}

export function expectGpr(site: Site, op: unknown, operand: number): Gpr {
  if (isGpr(op)) return op;
  throw invalidOperand(site, operand, `expected a register, got ${describe(op)}`);
}

export function expectMemory(site: Site, op: unknown, operand: number): Memory {
  if (isMemory(op)) return op;
  throw invalidOperand(site, operand, `expected a memory operand, got ${describe(op)}`);
}

export function expectImmediate(site: Site, op: unknown, operand: number): bigint {
  if (isImmediate(op)) return immediateValue(op, site.mnemonic, operand, site.index);
  throw invalidOperand(site, operand, `expected an immediate, got ${describe(op)}`);
}

/**
 * The operation width of a two-operand form: the register's, or the memory operand's width.
 * Throws ENC_OPERAND_SIZE_MISMATCH when the widths disagree or none is known.
 */
export function commonSize(site: Site, a: Gpr | Memory, b: Gpr | Memory | undefined): OperandSize {
  const sa = a.size;
  const sb = b?.size;
  if (sa !== undefined && sb !== undefined && sa !== sb) {
    throw sizeMismatch(site, 1, `operand widths differ (${sa} and ${sb} bits)`);
  }
  const s = sa ?? sb;
  if (s === undefined) throw sizeMismatch(site, 0, 'the operand width is unknown: use qword/dword/word/byte');
  return s;
}

/** Whether `op` is the accumulator (al/ax/eax/rax). */
export function isAccumulator(op: Gpr | Memory): boolean {
  return op.kind === 'gpr' && op.id === 0 && !op.high8;
}
