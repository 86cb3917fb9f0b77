import { EncoderError } from '../errors.js';
import type { Memory } from '../operands.js';
import type { Gpr, OperandSize } from '../registers.js';
import { fitsSigned, truncateSigned, writeLe } from './immediate.js';
import type { FixedItem, Fixup } from './item.js';
import type { Site } from './operand-checks.js';

/** A register operand together with its position in the Intel operand list (for errors). */
export interface RegisterSlot {
  readonly reg: Gpr;
  readonly operand: number;
}

/** A ModRM r/m operand: a register or memory, with its position in the Intel operand list. */
export interface RmSlot {
  readonly op: Gpr | Memory;
  readonly operand: number;
}

/** Everything needed to lay out one legacy/REX-encoded instruction. */
export interface InstructionSpec {
  /** 16 adds the 0x66 prefix, 64 sets REX.W; 8 and 32 add nothing. */
  readonly opsize?: OperandSize | undefined;
  /** A mandatory prefix (f2, f3) placed after 0x66 and before REX. */
  readonly mandatory?: number;
  readonly opcode: readonly number[];
  /** A register folded into the low three bits of the last opcode byte (push r, b8+r). */
  readonly opreg?: RegisterSlot;
  /** ModRM.reg: a register, or an opcode extension /0../7. */
  readonly reg?: RegisterSlot | number;
  readonly rm?: RmSlot;
  readonly imm?: { readonly value: bigint; readonly size: 1 | 2 | 4 | 8 };
}

// One scratch buffer for every instruction: the result is copied out once, so encoding does
// not allocate per byte.
const scratch = new Uint8Array(32);
const SCALE_BITS: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

function invalid(site: Site, operand: number, message: string): EncoderError {
  return new EncoderError('ENC_INVALID_OPERAND', message, site.mnemonic, operand, site.index);
}

function byteRegFlags(reg: Gpr, operand: number): number {
  if (reg.size !== 8) return 0;
  if (reg.needsRex) return 1;
  return reg.high8 ? (operand + 1) << 1 : 0;
}

/**
 * Encodes one instruction of `site` (its mnemonic and index name errors). Throws EncoderError for operands the form cannot take; the caller
 * has already picked the form (opcode, immediate width) from the operand shapes.
 */
export function encodeInstruction(site: Site, spec: InstructionSpec): FixedItem {
  let rex = spec.opsize === 64 ? 0x48 : 0;
  // Bit 0: an 8-bit register that needs REX (spl..dil); the rest: 1 + operand index of ah..bh.
  let byteRegs = 0;
  let modrm = -1;
  let sib = -1;
  let dispSize = 0;
  let disp = 0n;
  let ripFixup: { target: NonNullable<Memory['target']>; disp: bigint } | undefined;
  let segmentPrefix = -1;

  if (spec.opreg !== undefined) {
    byteRegs |= byteRegFlags(spec.opreg.reg, spec.opreg.operand);
    if (spec.opreg.reg.id >= 8) rex |= 0x41;
  }
  let regField = 0;
  if (typeof spec.reg === 'number') {
    regField = spec.reg;
  } else if (spec.reg !== undefined) {
    byteRegs |= byteRegFlags(spec.reg.reg, spec.reg.operand);
    regField = spec.reg.reg.id & 7;
    if (spec.reg.reg.id >= 8) rex |= 0x44;
  }
  if (spec.rm !== undefined) {
    const op = spec.rm.op;
    if (op.kind === 'gpr') {
      byteRegs |= byteRegFlags(op, spec.rm.operand);
      if (op.id >= 8) rex |= 0x41;
      modrm = 0xc0 | (regField << 3) | (op.id & 7);
    } else {
      const operand = spec.rm.operand;
      if (op.segment !== undefined) segmentPrefix = op.segment.prefix;
      const scaleBits = SCALE_BITS[op.scale];
      if (scaleBits === undefined) throw invalid(site, operand, `scale ${op.scale} is not 1, 2, 4 or 8`);
      if (op.index !== undefined) {
        if (op.index.size !== 64) throw invalid(site, operand, `index ${op.index.name} is not a 64-bit register`);
        if (op.index.id === 4) throw invalid(site, operand, 'rsp cannot be an index register');
      } else if (op.scale !== 1) {
        throw invalid(site, operand, 'a scale needs an index register');
      }
      const d = truncateSigned(op.disp, 64);
      if (op.target === undefined && (d === undefined || !fitsSigned(d, 32))) {
        throw new EncoderError('ENC_IMMEDIATE_RANGE', `displacement ${op.disp} does not fit 32 bits`, site.mnemonic, operand, site.index);
      }
      disp = d ?? 0n;
      const base = op.base;
      if (base === undefined) {
        // [disp32] and [index*scale+disp32]: SIB with base=101 and mod=00 means "no base".
        modrm = (regField << 3) | 4;
        sib = (scaleBits << 6) | ((op.index === undefined ? 4 : op.index.id & 7) << 3) | 5;
        if (op.index !== undefined && op.index.id >= 8) rex |= 0x42;
        dispSize = 4;
      } else if (base.kind === 'rip') {
        if (op.index !== undefined) throw invalid(site, operand, 'a RIP-relative operand cannot have an index');
        modrm = (regField << 3) | 5;
        dispSize = 4;
        if (op.target !== undefined) ripFixup = { target: op.target, disp: op.disp };
      } else {
        if (base.size !== 64) throw invalid(site, operand, `base ${base.name} is not a 64-bit register`);
        if (op.target !== undefined) throw invalid(site, operand, 'only rip can be the base of a target operand');
        const low = base.id & 7;
        // rbp/r13 as base with mod=00 would mean RIP/disp32, so they always carry a displacement.
        const mod = disp === 0n && low !== 5 ? 0 : fitsSigned(disp, 8) ? 1 : 2;
        dispSize = mod === 0 ? 0 : mod === 1 ? 1 : 4;
        if (base.id >= 8) rex |= 0x41;
        // rsp/r12 as base need a SIB byte (rm=100 means "SIB follows").
        if (op.index !== undefined || low === 4) {
          modrm = (mod << 6) | (regField << 3) | 4;
          sib = (scaleBits << 6) | ((op.index === undefined ? 4 : op.index.id & 7) << 3) | low;
          if (op.index !== undefined && op.index.id >= 8) rex |= 0x42;
        } else {
          modrm = (mod << 6) | (regField << 3) | low;
        }
      }
    }
  }

  if ((byteRegs & 1) !== 0 && rex === 0) rex = 0x40;
  if (rex !== 0 && byteRegs > 1) {
    throw invalid(site, (byteRegs >> 1) - 1, 'ah, ch, dh and bh cannot be encoded in an instruction that needs a REX prefix');
  }

  let n = 0;
  if (segmentPrefix >= 0) scratch[n++] = segmentPrefix;
  if (spec.opsize === 16) scratch[n++] = 0x66;
  if (spec.mandatory !== undefined) scratch[n++] = spec.mandatory;
  if (rex !== 0) scratch[n++] = rex;
  const opcode = spec.opcode;
  for (let i = 0; i < opcode.length; i++) scratch[n++] = opcode[i] as number;
  if (spec.opreg !== undefined) scratch[n - 1] = (scratch[n - 1] as number) | (spec.opreg.reg.id & 7);
  if (modrm >= 0) scratch[n++] = modrm;
  if (sib >= 0) scratch[n++] = sib;
  const dispAt = n;
  if (dispSize > 0) { writeLe(scratch, n, disp, dispSize); n += dispSize; }
  const immSize = spec.imm?.size ?? 0;
  if (spec.imm !== undefined) { writeLe(scratch, n, spec.imm.value, immSize); n += immSize; }

  const fixups: Fixup[] = [];
  if (ripFixup !== undefined) {
    // The CPU adds the disp32 to the address after the whole instruction, immediate included.
    fixups.push({ at: dispAt, size: 4, pcrel: true, target: ripFixup.target, addend: ripFixup.disp - 4n - BigInt(immSize) });
  }
  return { kind: 'fixed', bytes: scratch.slice(0, n), fixups, mnemonic: site.mnemonic, index: site.index };
}

/** A fixed item made of literal bytes (no operands). */
export function rawItem(mnemonic: string, index: number, bytes: readonly number[]): FixedItem {
  return { kind: 'fixed', bytes: Uint8Array.from(bytes), fixups: [], mnemonic, index };
}
