import { EncoderError } from '../errors.js';
import { describeTarget, type Label, type LabelPlacement, type Target } from '../labels.js';
import { fitsSigned, writeLe } from './immediate.js';
import type { BranchItem, Item } from './item.js';
import { writeNops } from './nops.js';

/** Where and how to lay out an Assembler's code. */
export interface EncodeOptions {
  /** Virtual address of the first byte. */
  readonly va: bigint;
  /** Addresses of external symbols; references to the ones given are resolved, not recorded. */
  readonly symbols?: ReadonlyMap<string, bigint> | Readonly<Record<string, bigint>>;
}

/** ELF-style relocation types of the records left for a later layout step. */
export type RelocationType = 'PC32' | 'ABS64';

/** A reference to an external symbol that `encode` could not resolve (R_X86_64_PC32 / _64). */
export interface Relocation {
  /** Offset of the field in `bytes`. */
  readonly offset: number;
  readonly symbol: string;
  /** As in ELF RELA: PC32 stores S + A - P, ABS64 stores S + A. */
  readonly addend: bigint;
  readonly type: RelocationType;
  /**
   * True for the rel32 of a call/jmp/jcc. GNU as records those as R_X86_64_PLT32, which a
   * static layout resolves exactly like PC32.
   */
  readonly branch: boolean;
  /** Index of the instruction (or data directive) holding the field. */
  readonly instructionIndex: number;
}

/** The output of `Assembler.encode`. */
export interface EncodeResult {
  readonly va: bigint;
  readonly bytes: Uint8Array;
  readonly relocations: readonly Relocation[];
  /** Every bound label, in creation order. */
  readonly labels: readonly LabelPlacement[];
  /** Byte offset of each instruction or data directive, by instruction index; one extra entry for the end. */
  readonly instructionOffsets: readonly number[];
  /** Where a label landed. Throws ENC_UNBOUND_LABEL for an unbound label or one of another assembler. */
  labelVa(label: Label): bigint;
  labelOffset(label: Label): number;
}

const SHORT = { jmp: 2, jcc: 2, call: 5 } as const;
const NEAR = { jmp: 5, jcc: 6, call: 5 } as const;

function symbolVa(options: EncodeOptions, name: string): bigint | undefined {
  const symbols = options.symbols;
  if (symbols === undefined) return undefined;
  if (symbols instanceof Map) return symbols.get(name);
  return Object.prototype.hasOwnProperty.call(symbols, name) ? (symbols as Record<string, bigint>)[name] : undefined;
}

/**
 * Lays out items at options.va: branches start short and grow to rel32 until nothing changes
 * (growing only, so the loop ends), then bytes are written and fixups resolved. Pure: a throw
 * leaves the caller's state as it was.
 */
export function layout(items: readonly Item[], allLabels: readonly Label[], instructionCount: number, options: EncodeOptions): EncodeResult {
  const labelCount = allLabels.length;
  const va = options.va;
  // Check every reference first, so a missing label is reported by the instruction that uses it.
  const bound = new Uint8Array(labelCount);
  for (const item of items) if (item.kind === 'bind') bound[item.label.id] = 1;
  const checkTarget = (t: Target, mnemonic: string, index: number): void => {
    if (typeof t === 'object' && t.kind === 'label' && bound[t.id] !== 1) {
      throw new EncoderError('ENC_UNBOUND_LABEL', `label ${describeTarget(t)} is never bound`, mnemonic, 0, index);
    }
  };
  for (const item of items) {
    if (item.kind === 'branch') checkTarget(item.target, item.mnemonic, item.index);
    else if (item.kind === 'fixed') for (const f of item.fixups) checkTarget(f.target, item.mnemonic, item.index);
  }

  const near = new Uint8Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Item;
    if (item.kind === 'branch' && (item.op === 'call' || item.near || (typeof item.target === 'object' && item.target.kind === 'symbol'))) near[i] = 1;
  }
  const offsets = new Int32Array(items.length + 1);
  const labelOffsets = new Int32Array(labelCount);

  const itemSize = (i: number, item: Item, at: number): number => {
    switch (item.kind) {
      case 'fixed': return item.bytes.length;
      case 'branch': return near[i] === 1 ? NEAR[item.op] : SHORT[item.op];
      case 'align': {
        // Alignment is relative to the virtual address, not to the block start.
        const mask = BigInt(item.alignment - 1);
        return Number((BigInt(item.alignment) - ((va + BigInt(at)) & mask)) & mask);
      }
      case 'bind': return 0;
    }
  };
  const targetVa = (t: Target): bigint | undefined => {
    if (typeof t === 'bigint') return t;
    if (t.kind === 'label') return va + BigInt(labelOffsets[t.id] as number);
    return symbolVa(options, t.name);
  };

  for (;;) {
    let at = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      offsets[i] = at;
      if (item.kind === 'bind') labelOffsets[item.label.id] = at;
      at += itemSize(i, item, at);
    }
    offsets[items.length] = at;
    let grew = false;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      if (item.kind !== 'branch' || near[i] === 1) continue;
      const target = targetVa(item.target) as bigint;
      const rel = target - (va + BigInt((offsets[i] as number) + SHORT[item.op]));
      if (!fitsSigned(rel, 8)) { near[i] = 1; grew = true; }
    }
    if (!grew) break;
  }

  const total = offsets[items.length] as number;
  const bytes = new Uint8Array(total);
  const relocations: Relocation[] = [];
  const instructionOffsets: number[] = new Array<number>(instructionCount + 1).fill(0);
  instructionOffsets[instructionCount] = total;

  const writeField = (at: number, size: 1 | 4 | 8, pcrel: boolean, target: Target, addend: bigint, mnemonic: string, index: number, branch = false): void => {
    const s = targetVa(target);
    if (s === undefined) {
      const name = (target as { name: string }).name;
      if (size === 1) throw new EncoderError('ENC_UNSUPPORTED_FORM', `no 8-bit relocation for ${name}`, mnemonic, 0, index);
      // RELA: the addend lives in the record and the field stays zero, as GNU as leaves it.
      bytes.fill(0, at, at + size);
      relocations.push({ offset: at, symbol: name, addend, type: pcrel ? 'PC32' : 'ABS64', branch, instructionIndex: index });
      return;
    }
    const value = pcrel ? s + addend - (va + BigInt(at)) : s + addend;
    if (pcrel && !fitsSigned(value, size * 8)) {
      throw new EncoderError('ENC_REL32_OUT_OF_RANGE', `${describeTarget(target)} is ${value} bytes away, beyond a rel${size * 8}`, mnemonic, 0, index);
    }
    writeLe(bytes, at, value, size);
  };

  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Item;
    const at = offsets[i] as number;
    switch (item.kind) {
      case 'fixed':
        instructionOffsets[item.index] = at;
        copyBytes(bytes, item.bytes, at);
        for (const f of item.fixups) writeField(at + f.at, f.size, f.pcrel, f.target, f.addend, item.mnemonic, item.index);
        break;
      case 'branch': writeBranch(item, at, near[i] === 1, bytes, writeField); instructionOffsets[item.index] = at; break;
      case 'align': {
        instructionOffsets[item.index] = at;
        const n = (offsets[i + 1] as number) - at;
        if (item.fill === 'nop') writeNops(bytes, at, n);
        else bytes.fill(item.fill, at, at + n);
        break;
      }
      case 'bind': break;
    }
  }

  const labels: LabelPlacement[] = [];
  const byId = new Map<number, LabelPlacement>();
  for (const label of allLabels) {
    if (bound[label.id] !== 1) continue;
    const offset = labelOffsets[label.id] as number;
    const p: LabelPlacement = { label, name: label.name, offset, va: va + BigInt(offset) };
    labels.push(p);
    byId.set(label.id, p);
  }
  const owner = allLabels[0]?.owner;
  const placement = (label: Label): LabelPlacement => {
    const p = label.owner === owner ? byId.get(label.id) : undefined;
    if (p === undefined) throw new EncoderError('ENC_UNBOUND_LABEL', `label ${describeTarget(label)} is not bound in this assembler`);
    return p;
  };
  return {
    va, bytes, relocations, labels, instructionOffsets,
    labelVa: (label) => placement(label).va,
    labelOffset: (label) => placement(label).offset,
  };
}

/** TypedArray.set costs more than a loop for the few bytes of one instruction. */
function copyBytes(out: Uint8Array, src: Uint8Array, at: number): void {
  if (src.length > 32) { out.set(src, at); return; }
  for (let i = 0; i < src.length; i++) out[at + i] = src[i] as number;
}

function writeBranch(
  item: BranchItem, at: number, near: boolean, bytes: Uint8Array,
  writeField: (at: number, size: 1 | 4 | 8, pcrel: boolean, target: Target, addend: bigint, mnemonic: string, index: number, branch: boolean) => void,
): void {
  let n = at;
  if (item.op === 'call') bytes[n++] = 0xe8;
  else if (item.op === 'jmp') bytes[n++] = near ? 0xe9 : 0xeb;
  else if (near) { bytes[n++] = 0x0f; bytes[n++] = 0x80 | item.cc; } else bytes[n++] = 0x70 | item.cc;
  const size = near ? 4 : 1;
  writeField(n, size, true, item.target, -BigInt(size), item.mnemonic, item.index, true);
}
