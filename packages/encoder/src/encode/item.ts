import type { Label, Target } from '../labels.js';

/**
 * A field whose value is known only at layout time: `S + A - P` (pcrel) or `S + A` (absolute),
 * where S is the target's address, A the addend and P the field's own address. This is the ELF
 * convention, so an unresolved symbol becomes a relocation record without any conversion.
 */
export interface Fixup {
  /** Offset of the field inside its item. */
  readonly at: number;
  readonly size: 1 | 4 | 8;
  readonly pcrel: boolean;
  readonly target: Target;
  readonly addend: bigint;
}

/** An instruction or data whose bytes are fixed except for its fixups. */
export interface FixedItem {
  readonly kind: 'fixed';
  readonly bytes: Uint8Array;
  readonly fixups: readonly Fixup[];
  readonly mnemonic: string;
  readonly index: number;
}

/** Branch condition codes, in the order of the 0x70/0x0f 0x80 opcode rows. */
export type BranchOp = 'jmp' | 'call' | 'jcc';

/**
 * A direct branch to a label, symbol or absolute address: short (rel8) or near (rel32),
 * chosen at layout time. Calls and branches to external symbols are always near.
 */
export interface BranchItem {
  readonly kind: 'branch';
  readonly op: BranchOp;
  /** Condition code 0-15 for jcc. */
  readonly cc: number;
  readonly target: Target;
  readonly mnemonic: string;
  readonly index: number;
  /** The caller asked for rel32 whatever the distance. */
  readonly near: boolean;
}

/** Padding to a power-of-two boundary, with NOPs (code) or a fill byte. */
export interface AlignItem {
  readonly kind: 'align';
  readonly alignment: number;
  readonly fill: 'nop' | number;
  readonly index: number;
}

/** A label's position. */
export interface BindItem {
  readonly kind: 'bind';
  readonly label: Label;
}

export type Item = FixedItem | BranchItem | AlignItem | BindItem;
