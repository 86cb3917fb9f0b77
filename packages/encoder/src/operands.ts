import { EncoderError } from './errors.js';
import type { Gpr, Gpr64, OperandSize, SegmentRegister } from './registers.js';
import { isLabel, isSymbol, type Target } from './labels.js';

/** An immediate: a number (must be a safe integer) or a bigint. */
export type Immediate = number | bigint;

/** The instruction pointer, usable as a memory base: `qword(rip, 0)` is `[rip+0]`. */
export interface RipRegister {
  readonly kind: 'rip';
  readonly name: 'rip';
}

/** A memory scale factor. */
export type Scale = 1 | 2 | 4 | 8;

/**
 * A memory operand. Built by `qword`/`dword`/`word`/`byte`/`mem` and by `rip(target)`;
 * not meant to be written by hand.
 */
export interface Memory {
  readonly kind: 'mem';
  /** Access width; undefined for `lea` and other forms where the width does not matter. */
  readonly size: OperandSize | undefined;
  readonly segment: SegmentRegister | undefined;
  readonly base: Gpr | RipRegister | undefined;
  readonly index: Gpr | undefined;
  readonly scale: Scale;
  /** Displacement; with a RIP-relative `target`, an addend to the target's address. */
  readonly disp: bigint;
  /** For `rip(target)`: the address the operand refers to. The disp32 is computed at encode time. */
  readonly target: Target | undefined;
}

/** The fields of a memory operand, as accepted by `qword({ ... })` and friends. */
export interface MemorySpec {
  base?: Gpr64 | Gpr | RipRegister;
  index?: Gpr64 | Gpr;
  scale?: Scale | number;
  disp?: Immediate;
  segment?: SegmentRegister;
}

function toBigInt(v: Immediate): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) throw new EncoderError('ENC_IMMEDIATE_RANGE', `displacement ${v} is not a safe integer`, 'mem', 0);
  return BigInt(v);
}

function build(size: OperandSize | undefined, a: Gpr | RipRegister | MemorySpec | Memory, disp?: Immediate): Memory {
  if ((a as Memory).kind === 'mem') {
    const m = a as Memory;
    return Object.freeze({ kind: 'mem', size, segment: m.segment, base: m.base, index: m.index, scale: m.scale, disp: m.disp, target: m.target });
  }
  if ((a as Gpr).kind === 'gpr' || (a as RipRegister).kind === 'rip') {
    return Object.freeze({
      kind: 'mem', size, segment: undefined, base: a as Gpr | RipRegister, index: undefined, scale: 1,
      disp: disp === undefined ? 0n : toBigInt(disp), target: undefined,
    });
  }
  const spec = a as MemorySpec;
  return Object.freeze({
    kind: 'mem', size, segment: spec.segment, base: spec.base, index: spec.index,
    scale: (spec.scale ?? 1) as Scale,
    disp: spec.disp === undefined ? 0n : toBigInt(spec.disp), target: undefined,
  });
}

/**
 * A memory operand builder for one width. Call it as `qword(base, disp)`,
 * `qword({ base, index, scale, disp, segment })`, or `qword(rip(label))` to give a width
 * to a RIP-relative operand.
 */
export interface MemoryBuilder {
  (base: Gpr | RipRegister, disp?: Immediate): Memory;
  (spec: MemorySpec | Memory): Memory;
}

function builder(size: OperandSize | undefined): MemoryBuilder {
  return ((a: Gpr | RipRegister | MemorySpec | Memory, disp?: Immediate) => build(size, a, disp)) as MemoryBuilder;
}

/** 64-bit memory operand (`qword ptr`). */
export const qword: MemoryBuilder = builder(64);
/** 32-bit memory operand (`dword ptr`). */
export const dword: MemoryBuilder = builder(32);
/** 16-bit memory operand (`word ptr`). */
export const word: MemoryBuilder = builder(16);
/** 8-bit memory operand (`byte ptr`). */
export const byte: MemoryBuilder = builder(8);
/** Memory operand without a width (for `lea`, and forms whose other operand gives the width). */
export const mem: MemoryBuilder = builder(undefined);

/**
 * `rip(target, addend?)` is a RIP-relative memory operand that refers to a label, an external
 * symbol or an absolute virtual address; its disp32 is computed at encode time. `rip` itself is
 * also the register for `qword(rip, disp)` with a raw displacement.
 */
export type Rip = RipRegister & ((target: Target, addend?: Immediate) => Memory);

export const rip: Rip = Object.defineProperties(
  (target: Target, addend: Immediate = 0): Memory => {
    if (!(typeof target === 'bigint' || isLabel(target) || isSymbol(target))) {
      throw new TypeError('rip(target): target must be a label, a symbol or a bigint address');
    }
    return Object.freeze({
      kind: 'mem', size: undefined, segment: undefined, base: ripRegister, index: undefined, scale: 1,
      disp: toBigInt(addend), target,
    });
  },
  // A function's own `name` is read-only, so define both properties rather than assign them.
  { kind: { value: 'rip', enumerable: true }, name: { value: 'rip', enumerable: true } },
) as Rip;

const ripRegister: RipRegister = rip;

/** Whether an operand is a memory operand. */
export function isMemory(x: unknown): x is Memory {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'mem';
}

/** Whether an operand is a general-purpose register. */
export function isGpr(x: unknown): x is Gpr {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'gpr';
}

/** Whether an operand is an immediate. */
export function isImmediate(x: unknown): x is Immediate {
  return typeof x === 'bigint' || typeof x === 'number';
}
