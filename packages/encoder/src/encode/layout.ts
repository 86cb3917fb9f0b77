import { EncoderError } from '../errors.js';
import { describeTarget, type Label, type LabelPlacement, type Target } from '../labels.js';
import { fitsSigned, writeLe } from './immediate.js';
import type { Item } from './item.js';
import { writeNops } from './nops.js';

/** Where and how to lay out an Assembler's code. */
export interface EncodeOptions {
  /** Virtual address of the first byte. */
  readonly va: bigint;
  /**
   * Addresses of external symbols; references to the ones given are resolved, not recorded. A
   * number must be a non-negative safe integer (a bigint for addresses from 2^53 on); any other
   * value of a referenced symbol is an ENC_INVALID_OPERAND of the instruction that uses it.
   */
  readonly symbols?: ReadonlyMap<string, bigint | number> | Readonly<Record<string, bigint | number>>;
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
/** A distance no rel8 or rel32 reaches: stands for a target too far to express as a number. */
const FAR = Number.MAX_SAFE_INTEGER;

/** The address `encode({ symbols })` gives for `name` as it was given, or undefined. */
function givenSymbolVa(options: EncodeOptions, name: string): unknown {
  const symbols = options.symbols;
  if (symbols === undefined) return undefined;
  if (symbols instanceof Map) return symbols.get(name);
  return Object.prototype.hasOwnProperty.call(symbols, name) ? (symbols as Record<string, unknown>)[name] : undefined;
}

/**
 * Lays out items at options.va: branches start short and grow to rel32 until nothing changes
 * (growing only, so the loop ends), then bytes are written and fixups resolved. Pure: a throw
 * leaves the caller's state as it was.
 */
export function layout(items: readonly Item[], allLabels: readonly Label[], instructionCount: number, options: EncodeOptions): EncodeResult {
  // A class rather than closures: no function objects are made per encode.
  return new LayoutRun(items, allLabels, instructionCount, options).run();
}

class LayoutRun {
  private readonly va: bigint;
  private readonly bound: Uint8Array;
  private readonly near: Uint8Array;
  private readonly offsets: Int32Array;
  private readonly labelOffsets: Int32Array;
  private bytes = new Uint8Array(0);
  private readonly relocations: Relocation[] = [];
  /** The address of every referenced symbol (undefined: not given, left as a relocation). */
  private readonly symbolVas = new Map<string, bigint | undefined>();

  constructor(
    private readonly items: readonly Item[],
    private readonly allLabels: readonly Label[],
    private readonly instructionCount: number,
    private readonly options: EncodeOptions,
  ) {
    this.va = options.va;
    this.bound = new Uint8Array(allLabels.length);
    this.near = new Uint8Array(items.length);
    this.offsets = new Int32Array(items.length + 1);
    this.labelOffsets = new Int32Array(allLabels.length);
  }

  run(): EncodeResult {
    const { items, bound, near } = this;
    // Indexed loops throughout: a plan lays out tens of thousands of items, mostly while V8 still
    // interprets this code, where each step of an iterator is an allocation.
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      if (item.kind === 'bind') bound[item.label.id] = 1;
    }
    // Check every reference first, so a missing label is reported by the instruction that uses it.
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      if (item.kind === 'branch') this.checkTarget(item.target, item.mnemonic, item.index);
      else if (item.kind === 'fixed') for (let k = 0; k < item.fixups.length; k++) this.checkTarget(item.fixups[k]!.target, item.mnemonic, item.index);
    }
    // Calls and branches to external symbols are always rel32, as GNU as emits them.
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      if (item.kind === 'branch' && (item.op === 'call' || item.near || (typeof item.target === 'object' && item.target.kind === 'symbol'))) near[i] = 1;
    }
    this.relax();
    return this.emit();
  }

  private checkTarget(t: Target, mnemonic: string, index: number): void {
    if (typeof t !== 'object') return;
    if (t.kind === 'label') {
      if (this.bound[t.id] !== 1) throw new EncoderError('ENC_UNBOUND_LABEL', `label ${describeTarget(t)} is never bound`, mnemonic, 0, index);
      return;
    }
    if (this.symbolVas.has(t.name)) return;
    const given = givenSymbolVa(this.options, t.name);
    let va: bigint | undefined;
    if (given === undefined || typeof given === 'bigint') va = given;
    else if (typeof given === 'number' && Number.isSafeInteger(given) && given >= 0) va = BigInt(given);
    else throw new EncoderError('ENC_INVALID_OPERAND', `symbol ${t.name}: address ${String(given)} is not a non-negative integer (a bigint, or a number below 2^53)`, mnemonic, undefined, index);
    this.symbolVas.set(t.name, va);
  }

  private itemSize(i: number, item: Item, at: number): number {
    switch (item.kind) {
      case 'fixed': return item.bytes.length;
      case 'branch': return this.near[i] === 1 ? NEAR[item.op] : SHORT[item.op];
      case 'align': {
        // Alignment is relative to the virtual address, not to the block start.
        const low = Number(BigInt.asUintN(32, this.va + BigInt(at)));
        return (item.alignment - (low % item.alignment)) % item.alignment;
      }
      case 'bind': return 0;
    }
  }

  /** Target minus block start as a number (FAR when it cannot be one): relaxation needs no BigInt. */
  private targetDelta(t: Target): number {
    if (typeof t === 'object' && t.kind === 'label') return this.labelOffsets[t.id] as number;
    const s = typeof t === 'bigint' ? t : this.symbolVas.get(t.name);
    if (s === undefined) return FAR;
    const d = s - this.va;
    return d > -0x100000000n && d < 0x100000000n ? Number(d) : FAR;
  }

  private relax(): void {
    const { items, near, offsets, labelOffsets } = this;
    for (;;) {
      let at = 0;
      for (let i = 0; i < items.length; i++) {
        const item = items[i] as Item;
        offsets[i] = at;
        if (item.kind === 'bind') labelOffsets[item.label.id] = at;
        at += this.itemSize(i, item, at);
      }
      offsets[items.length] = at;
      let grew = false;
      for (let i = 0; i < items.length; i++) {
        const item = items[i] as Item;
        if (item.kind !== 'branch' || near[i] === 1) continue;
        const rel = this.targetDelta(item.target) - ((offsets[i] as number) + SHORT[item.op]);
        if (rel < -128 || rel > 127) { near[i] = 1; grew = true; }
      }
      if (!grew) return;
    }
  }

  private targetVa(t: Target): bigint | undefined {
    if (typeof t === 'bigint') return t;
    if (t.kind === 'label') return this.va + BigInt(this.labelOffsets[t.id] as number);
    return this.symbolVas.get(t.name);
  }

  private writeField(at: number, size: 1 | 4 | 8, pcrel: boolean, target: Target, addend: bigint, mnemonic: string, index: number, branch: boolean): void {
    const s = this.targetVa(target);
    if (s === undefined) {
      const name = (target as { name: string }).name;
      if (size === 1) throw new EncoderError('ENC_UNSUPPORTED_FORM', `no 8-bit relocation for ${name}`, mnemonic, 0, index);
      // RELA: the addend lives in the record and the field stays zero, as GNU as leaves it.
      this.bytes.fill(0, at, at + size);
      this.relocations.push({ offset: at, symbol: name, addend, type: pcrel ? 'PC32' : 'ABS64', branch, instructionIndex: index });
      return;
    }
    const value = pcrel ? s + addend - (this.va + BigInt(at)) : s + addend;
    if (pcrel && !fitsSigned(value, size * 8)) {
      throw new EncoderError('ENC_REL32_OUT_OF_RANGE', `${describeTarget(target)} is ${value} bytes away, beyond a rel${size * 8}`, mnemonic, 0, index);
    }
    writeLe(this.bytes, at, value, size);
  }

  private emit(): EncodeResult {
    const { items, offsets, near } = this;
    const total = offsets[items.length] as number;
    const bytes = new Uint8Array(total);
    this.bytes = bytes;
    const instructionOffsets: number[] = new Array<number>(this.instructionCount + 1).fill(0);
    instructionOffsets[this.instructionCount] = total;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      const at = offsets[i] as number;
      switch (item.kind) {
        case 'fixed':
          instructionOffsets[item.index] = at;
          copyBytes(bytes, item.bytes, at);
          for (let k = 0; k < item.fixups.length; k++) {
            const f = item.fixups[k]!;
            this.writeField(at + f.at, f.size, f.pcrel, f.target, f.addend, item.mnemonic, item.index, false);
          }
          break;
        case 'branch': {
          instructionOffsets[item.index] = at;
          const isNear = near[i] === 1;
          let n = at;
          if (item.op === 'call') bytes[n++] = 0xe8;
          else if (item.op === 'jmp') bytes[n++] = isNear ? 0xe9 : 0xeb;
          else if (isNear) { bytes[n++] = 0x0f; bytes[n++] = 0x80 | item.cc; } else bytes[n++] = 0x70 | item.cc;
          const size = isNear ? 4 : 1;
          this.writeField(n, size, true, item.target, isNear ? -4n : -1n, item.mnemonic, item.index, true);
          break;
        }
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
    for (let i = 0; i < this.allLabels.length; i++) {
      const label = this.allLabels[i]!;
      if (this.bound[label.id] !== 1) continue;
      const offset = this.labelOffsets[label.id] as number;
      labels.push({ label, name: label.name, offset, va: this.va + BigInt(offset) });
    }
    return new Encoded(this.va, bytes, this.relocations, labels, instructionOffsets, this.allLabels[0]?.owner);
  }
}

/** An EncodeResult; label lookups go through the placements of bound labels. */
class Encoded implements EncodeResult {
  private byId: Map<number, LabelPlacement> | undefined;

  constructor(
    readonly va: bigint,
    readonly bytes: Uint8Array,
    readonly relocations: readonly Relocation[],
    readonly labels: readonly LabelPlacement[],
    readonly instructionOffsets: readonly number[],
    private readonly owner: object | undefined,
  ) {}

  // Arrow properties, so that `const { labelVa } = a.encode(...)` works too.
  readonly labelVa = (label: Label): bigint => this.placement(label).va;
  readonly labelOffset = (label: Label): number => this.placement(label).offset;

  private placement(label: Label): LabelPlacement {
    if (this.byId === undefined) {
      this.byId = new Map();
      for (const p of this.labels) this.byId.set(p.label.id, p);
    }
    const p = label.owner === this.owner ? this.byId.get(label.id) : undefined;
    if (p === undefined) throw new EncoderError('ENC_UNBOUND_LABEL', `label ${describeTarget(label)} is not bound in this assembler`);
    return p;
  }
}

/** TypedArray.set costs more than a loop for the few bytes of one instruction. */
function copyBytes(out: Uint8Array, src: Uint8Array, at: number): void {
  if (src.length > 32) { out.set(src, at); return; }
  for (let i = 0; i < src.length; i++) out[at + i] = src[i] as number;
}
