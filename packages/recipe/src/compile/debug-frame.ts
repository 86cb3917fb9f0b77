/**
 * Unwind information for the added code, written as a .debug_frame section, so that gdb shows the
 * program's own frames in a backtrace taken inside a trampoline, a stub or a hook.
 *
 * Trampolines run on the stack of the function they stand in for, so they get that function's
 * row at the site (elfkit's cfiRowAt). Stubs are entered by `jmp` with the resume address in rcx:
 * their rows make the CFA the site's rsp and the return address the saved rcx, so the unwinder
 * steps from a stub straight back into the program (or into the trampoline holding moved code).
 */
import type { CfiRow, CfiRule } from '@libos/elfkit';
import type { Assembler, EncodeResult } from '@libos/encoder';

export interface FrameRow {
  cfa: { register: number; offset: number } | { expression: Uint8Array };
  registers: Map<number, CfiRule>;
}

const RSP = 7;
const RCX = 2;
const RA = 16;
const RBP = 6;

/** A call frame: CFA = rsp + offset, return address saved at CFA - 8 (the CIE's default). */
export function callRow(offset = 8): FrameRow {
  return { cfa: { register: RSP, offset }, registers: new Map([[RA, { kind: 'offset', offset: -8 }]]) };
}

/** A frame whose CFA is rbp + 16 (after `push rbp; mov rbp, rsp`). */
export function rbpRow(): FrameRow {
  return { cfa: { register: RBP, offset: 16 }, registers: new Map<number, CfiRule>([[RA, { kind: 'offset', offset: -8 }], [RBP, { kind: 'offset', offset: -16 }]]) };
}

/**
 * A stub's row: the CFA is the site's rsp, `below` bytes above the current rsp; the return
 * address is in rcx, or saved `raBelow` bytes below the CFA.
 */
export function stubRow(below: number, raBelow?: number): FrameRow {
  const registers = new Map<number, CfiRule>([[RA, raBelow === undefined ? { kind: 'register', register: RCX } : { kind: 'offset', offset: -raBelow }]]);
  return { cfa: { register: RSP, offset: below }, registers };
}

export function fromCfiRow(row: CfiRow): FrameRow {
  // cfiRowAt hands out a fresh row each call: its map is ours to keep, not to copy again.
  const registers = row.registers;
  if (row.returnAddressRegister !== RA) {
    const ra = registers.get(row.returnAddressRegister);
    if (ra !== undefined) registers.set(RA, ra);
  }
  return { cfa: row.cfa, registers };
}

interface Region {
  startIndex: number;
  endIndex: number;
  events: { index: number; row: FrameRow }[];
}

/** Collects rows by instruction index while code is emitted; builds .debug_frame after encoding. */
export class FrameInfo {
  private readonly regions: Region[] = [];
  private open: Region | undefined;

  begin(a: Assembler, row: FrameRow): void {
    this.end(a);
    this.open = { startIndex: a.instructionCount, endIndex: -1, events: [{ index: a.instructionCount, row }] };
  }

  /** The row that holds from the next instruction on. */
  set(a: Assembler, row: FrameRow): void {
    this.open?.events.push({ index: a.instructionCount, row });
  }

  end(a: Assembler): void {
    if (this.open === undefined) return;
    this.open.endIndex = a.instructionCount;
    if (this.open.endIndex > this.open.startIndex) this.regions.push(this.open);
    this.open = undefined;
  }

  build(encoded: EncodeResult): Uint8Array {
    const out = new ByteWriter();
    // CIE: version 1, no augmentation, code alignment 1, data alignment -8, return address r16,
    // initial row CFA = rsp + 8, ra at CFA - 8.
    entry(out, (w) => {
      w.u32(0xffffffff);
      w.u8(1);
      w.u8(0);
      w.uleb(1);
      w.sleb(-8);
      w.u8(RA);
      w.u8(0x0c); w.uleb(RSP); w.uleb(8);
      w.u8(0x80 | RA); w.uleb(1);
    });
    const offsets = encoded.instructionOffsets;
    for (const region of this.regions) {
      const start = offsets[region.startIndex]!;
      const end = offsets[region.endIndex]!;
      if (end <= start) continue;
      entry(out, (w) => {
        w.u32(0); // CIE at offset 0 of .debug_frame
        w.u64(encoded.va + BigInt(start));
        w.u64(BigInt(end - start));
        let at = start;
        let previous: FrameRow | undefined;
        for (const e of region.events) {
          const offset = offsets[e.index]!;
          if (offset > at) {
            // The shortest advance that holds the distance (code alignment 1).
            const d = offset - at;
            if (d < 0x40) w.u8(0x40 | d);
            else if (d < 0x100) { w.u8(0x02); w.u8(d); }
            else if (d < 0x10000) { w.u8(0x03); w.u8(d & 0xff); w.u8(d >>> 8); }
            else { w.u8(0x04); w.u32(d); }
            at = offset;
          }
          writeRow(w, e.row, previous);
          previous = e.row;
        }
      });
    }
    return out.bytes();
  }
}

/** Writes what changed from `previous` to `row` (the whole row for the first one of an FDE). */
function writeRow(w: ByteWriter, row: FrameRow, previous: FrameRow | undefined): void {
  const prevCfa = previous?.cfa;
  if ('expression' in row.cfa) {
    if (prevCfa === undefined || !('expression' in prevCfa) || !sameBytes(prevCfa.expression, row.cfa.expression)) {
      w.u8(0x0f);
      w.block(row.cfa.expression);
    }
  } else if (prevCfa !== undefined && 'register' in prevCfa && prevCfa.register === row.cfa.register) {
    if (prevCfa.offset !== row.cfa.offset) {
      w.u8(0x0e); // DW_CFA_def_cfa_offset
      w.uleb(row.cfa.offset);
    }
  } else {
    w.u8(0x0c);
    w.uleb(row.cfa.register);
    w.uleb(row.cfa.offset);
  }
  // In register order (deterministic bytes); indexed loops, not iterators: a plan writes a few
  // thousand rows, and each iterator step allocates while V8 still interprets this code.
  const regs: number[] = [];
  row.registers.forEach((_rule, reg) => regs.push(reg));
  regs.sort((x, y) => x - y);
  for (let i = 0; i < regs.length; i++) {
    const reg = regs[i]!;
    const rule = row.registers.get(reg)!;
    const before = previous?.registers.get(reg);
    if (before !== undefined && sameRule(before, rule)) continue;
    switch (rule.kind) {
      case 'offset': w.u8(0x11); w.uleb(reg); w.sleb(rule.offset / -8); break;
      case 'val-offset': w.u8(0x15); w.uleb(reg); w.sleb(rule.offset / -8); break;
      case 'register': w.u8(0x09); w.uleb(reg); w.uleb(rule.register); break;
      case 'expression': w.u8(0x10); w.uleb(reg); w.block(rule.expression); break;
      case 'val-expression': w.u8(0x16); w.uleb(reg); w.block(rule.expression); break;
      case 'undefined': w.u8(0x07); w.uleb(reg); break;
      case 'same': w.u8(0x08); w.uleb(reg); break;
    }
  }
  if (previous !== undefined) {
    previous.registers.forEach((_rule, reg) => {
      if (!row.registers.has(reg)) { w.u8(0x08); w.uleb(reg); }
    });
  }
}

function sameRule(a: CfiRule, b: CfiRule): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'offset':
    case 'val-offset':
      return a.offset === (b as typeof a).offset;
    case 'register':
      return a.register === (b as typeof a).register;
    case 'expression':
    case 'val-expression':
      return sameBytes(a.expression, (b as typeof a).expression);
    default:
      return true;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Writes one length-prefixed entry, padded with DW_CFA_nop to a multiple of 8 bytes. */
function entry(out: ByteWriter, body: (w: ByteWriter) => void): void {
  const lengthAt = out.length;
  out.u32(0);
  body(out);
  while ((out.length - lengthAt) % 8 !== 0) out.u8(0);
  out.putU32(lengthAt, out.length - lengthAt - 4);
}

/** A little-endian byte buffer that grows by doubling. */
class ByteWriter {
  private buf = new Uint8Array(4096);
  private n = 0;
  get length(): number { return this.n; }
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.n));
    this.buf = grown;
  }
  u8(v: number): void { this.room(1); this.buf[this.n++] = v & 0xff; }
  u32(v: number): void { this.room(4); this.putU32(this.n, v); this.n += 4; }
  /** Overwrites 4 bytes already written at `at`. */
  putU32(at: number, v: number): void {
    this.buf[at] = v & 0xff; this.buf[at + 1] = (v >>> 8) & 0xff; this.buf[at + 2] = (v >>> 16) & 0xff; this.buf[at + 3] = (v >>> 24) & 0xff;
  }
  u64(v: bigint): void {
    this.u32(Number(v & 0xffffffffn));
    this.u32(Number((v >> 32n) & 0xffffffffn));
  }
  uleb(v: number): void {
    let x = v >>> 0;
    do {
      const b = x & 0x7f;
      x >>>= 7;
      this.u8(x !== 0 ? b | 0x80 : b);
    } while (x !== 0);
  }
  sleb(v: number): void {
    let x = v;
    for (;;) {
      const b = x & 0x7f;
      x >>= 7;
      const done = (x === 0 && (b & 0x40) === 0) || (x === -1 && (b & 0x40) !== 0);
      this.u8(done ? b : b | 0x80);
      if (done) return;
    }
  }
  block(b: Uint8Array): void {
    this.uleb(b.length);
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  bytes(): Uint8Array { return this.buf.slice(0, this.n); }
}
