/**
 * Call-frame information at one address: runs the CIE's and FDE's DW_CFA instructions of the
 * .eh_frame entry that covers `va` up to `va`, and returns the row (how to find the CFA and each
 * saved register). Used to give added code the unwind rules of the code it stands in for.
 */
import { ElfError } from '../errors.js';
import type { ElfFile } from '../model/types.js';

/** How to find a register's value in the caller, as DWARF says it. */
export type CfiRule =
  | { kind: 'offset'; offset: number }          // saved at CFA + offset
  | { kind: 'val-offset'; offset: number }      // the value is CFA + offset
  | { kind: 'register'; register: number }      // in another register
  | { kind: 'expression'; expression: Uint8Array }
  | { kind: 'val-expression'; expression: Uint8Array }
  | { kind: 'undefined' }
  | { kind: 'same' };

export interface CfiRow {
  /** The FDE's start (the function's, one byte early for a signal frame). */
  fdeStart: bigint;
  cfa: { register: number; offset: number } | { expression: Uint8Array };
  /** DWARF register number -> rule; registers not listed keep the CIE's default (same value). */
  registers: Map<number, CfiRule>;
  returnAddressRegister: number;
}

interface Entry { start: bigint; end: bigint; fde: number; fdeEnd: number; insns: number; cie: CieInfo }
interface CieInfo { codeAlign: number; dataAlign: number; ra: number; insns: number; insnsEnd: number; fdeEncoding: number; augData: boolean }

const cache = new WeakMap<ElfFile, Entry[]>();

/** The unwind row at `va`, or undefined when no .eh_frame FDE covers it. Throws ElfError on a malformed entry. */
export function cfiRowAt(elf: ElfFile, va: bigint): CfiRow | undefined {
  let entries = cache.get(elf);
  if (entries === undefined) {
    entries = indexEhFrame(elf);
    cache.set(elf, entries);
  }
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.end <= va) lo = mid + 1;
    else hi = mid;
  }
  const e = entries[lo];
  if (e === undefined || va < e.start || va >= e.end) return undefined;
  const r = new Reader(elf.bytes, e.fde);
  const row: CfiRow = { fdeStart: e.start, cfa: { register: 7, offset: 8 }, registers: new Map(), returnAddressRegister: e.cie.ra };
  const run = (from: number, to: number, limit: bigint, initial: CfiRow | undefined): bigint => {
    r.at = from;
    let loc = e.start;
    const stack: { cfa: CfiRow['cfa']; registers: Map<number, CfiRule> }[] = [];
    const ca = BigInt(e.cie.codeAlign);
    const da = e.cie.dataAlign;
    while (r.at < to) {
      const op = r.u8();
      const high = op & 0xc0;
      const low = op & 0x3f;
      let advance: bigint | undefined;
      if (high === 0x40) advance = BigInt(low) * ca;
      else if (high === 0x80) row.registers.set(low, { kind: 'offset', offset: Number(r.uleb()) * da });
      else if (high === 0xc0) restore(row, initial, low);
      else switch (op) {
        case 0x00: break;
        case 0x01: loc = r.u64(); break; // set_loc (absptr only, as gcc never emits it)
        case 0x02: advance = BigInt(r.u8()) * ca; break;
        case 0x03: advance = BigInt(r.u16()) * ca; break;
        case 0x04: advance = BigInt(r.u32()) * ca; break;
        case 0x05: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'offset', offset: Number(r.uleb()) * da }); break; }
        case 0x06: restore(row, initial, Number(r.uleb())); break;
        case 0x07: row.registers.set(Number(r.uleb()), { kind: 'undefined' }); break;
        case 0x08: row.registers.set(Number(r.uleb()), { kind: 'same' }); break;
        case 0x09: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'register', register: Number(r.uleb()) }); break; }
        case 0x0a: stack.push({ cfa: row.cfa, registers: new Map(row.registers) }); break;
        case 0x0b: { const saved = stack.pop() ?? r.fail('restore_state without remember_state'); row.cfa = saved.cfa; row.registers = saved.registers; break; }
        case 0x0c: row.cfa = { register: Number(r.uleb()), offset: Number(r.uleb()) }; break;
        case 0x0d: row.cfa = { register: Number(r.uleb()), offset: 'offset' in row.cfa ? row.cfa.offset : 0 }; break;
        case 0x0e: row.cfa = { register: 'register' in row.cfa ? row.cfa.register : 7, offset: Number(r.uleb()) }; break;
        case 0x0f: row.cfa = { expression: r.block() }; break;
        case 0x10: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'expression', expression: r.block() }); break; }
        case 0x11: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'offset', offset: Number(r.sleb()) * da }); break; }
        case 0x12: row.cfa = { register: Number(r.uleb()), offset: Number(r.sleb()) * da }; break;
        case 0x13: row.cfa = { register: 'register' in row.cfa ? row.cfa.register : 7, offset: Number(r.sleb()) * da }; break;
        case 0x14: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'val-offset', offset: Number(r.uleb()) * da }); break; }
        case 0x15: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'val-offset', offset: Number(r.sleb()) * da }); break; }
        case 0x16: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'val-expression', expression: r.block() }); break; }
        case 0x2e: r.uleb(); break; // GNU_args_size
        case 0x2f: { const reg = Number(r.uleb()); row.registers.set(reg, { kind: 'offset', offset: -Number(r.uleb()) * da }); break; }
        default: r.fail(`unknown DW_CFA opcode 0x${op.toString(16)}`);
      }
      if (advance !== undefined) {
        if (loc + advance > limit) return loc;
        loc += advance;
      }
    }
    return loc;
  };
  run(e.cie.insns, e.cie.insnsEnd, e.start, undefined);
  const initial: CfiRow = { ...row, registers: new Map(row.registers) };
  run(e.insns, e.fdeEnd, va, initial);
  return row;
}

function restore(row: CfiRow, initial: CfiRow | undefined, reg: number): void {
  const rule = initial?.registers.get(reg);
  if (rule === undefined) row.registers.delete(reg);
  else row.registers.set(reg, rule);
}

function indexEhFrame(elf: ElfFile): Entry[] {
  const s = elf.section('.eh_frame');
  if (s === undefined || s.size === 0 || s.type === 8 /* NOBITS */) return [];
  const bytes = elf.bytes;
  const end = s.offset + s.size;
  if (end > bytes.length) throw new ElfError('ELF_BAD_OFFSET', s.offset, '.eh_frame runs past the end of the file');
  const cies = new Map<number, CieInfo>();
  const out: Entry[] = [];
  const r = new Reader(bytes, s.offset);
  let at = s.offset;
  for (let guard = 0; at + 4 <= end && guard < 10_000_000; guard++) {
    r.at = at;
    const length = r.u32();
    if (length === 0) break;
    if (length === 0xffffffff) r.fail('64-bit .eh_frame entries are not supported here');
    const idAt = r.at;
    const entryEnd = idAt + length;
    if (entryEnd > end) r.fail('entry runs past .eh_frame');
    const id = r.u32();
    if (id !== 0) {
      const cieAt = idAt - id;
      let cie = cies.get(cieAt);
      if (cie === undefined) {
        cie = readCie(bytes, cieAt);
        cies.set(cieAt, cie);
      }
      const fieldVa = s.va + BigInt(r.at - s.offset);
      const start = r.pointer(cie.fdeEncoding, fieldVa);
      const range = r.pointer(cie.fdeEncoding & 0x0f, 0n);
      if (cie.augData) r.at += Number(r.uleb());
      if (range > 0n) out.push({ start, end: start + range, fde: at, fdeEnd: entryEnd, insns: r.at, cie });
    }
    at = entryEnd;
  }
  return out.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
}

function readCie(bytes: Uint8Array, at: number): CieInfo {
  const r = new Reader(bytes, at);
  const length = r.u32();
  const end = r.at + length;
  if (r.u32() !== 0) r.fail('FDE points at something that is not a CIE');
  r.u8(); // version
  let aug = '';
  for (let b = r.u8(); b !== 0; b = r.u8()) {
    aug += String.fromCharCode(b);
    if (aug.length > 32) r.fail('augmentation string too long');
  }
  const codeAlign = Number(r.uleb());
  const dataAlign = Number(r.sleb());
  const ra = Number(r.uleb());
  let fdeEncoding = 0;
  let augData = false;
  let insns = r.at;
  if (aug.startsWith('z')) {
    augData = true;
    const augLength = Number(r.uleb());
    const augEnd = r.at + augLength;
    for (const ch of aug.slice(1)) {
      if (ch === 'R') fdeEncoding = r.u8();
      else if (ch === 'L') r.u8();
      else if (ch === 'P') r.pointer(r.u8() & 0x0f, 0n);
      else if (ch !== 'S' && ch !== 'B' && ch !== 'G') break;
    }
    insns = augEnd;
  }
  return { codeAlign, dataAlign, ra, insns, insnsEnd: end, fdeEncoding, augData };
}

class Reader {
  constructor(private readonly bytes: Uint8Array, public at: number) {}
  fail(message: string): never {
    throw new ElfError('ELF_BAD_EH_FRAME', this.at, message);
  }
  private need(n: number): number {
    if (this.at + n > this.bytes.length) this.fail('call-frame information runs past the end of the file');
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(): number { return this.bytes[this.need(1)]!; }
  u16(): number { const a = this.need(2); return this.bytes[a]! | (this.bytes[a + 1]! << 8); }
  u32(): number { const a = this.need(4); return (this.bytes[a]! | (this.bytes[a + 1]! << 8) | (this.bytes[a + 2]! << 16)) + this.bytes[a + 3]! * 0x1000000; }
  u64(): bigint { const lo = BigInt(this.u32()); return lo | (BigInt(this.u32()) << 32n); }
  uleb(): bigint {
    let v = 0n;
    for (let shift = 0n, i = 0; i < 10; i++, shift += 7n) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    return this.fail('LEB128 longer than 10 bytes');
  }
  sleb(): bigint {
    let v = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) return (b & 0x40) !== 0 ? v - (1n << shift) : v;
    }
    return this.fail('LEB128 longer than 10 bytes');
  }
  block(): Uint8Array {
    const n = Number(this.uleb());
    const a = this.need(n);
    return this.bytes.slice(a, a + n);
  }
  pointer(encoding: number, fieldVa: bigint): bigint {
    if (encoding === 0xff) return 0n;
    let v: bigint;
    switch (encoding & 0x0f) {
      case 0x00: case 0x04: v = this.u64(); break;
      case 0x01: v = this.uleb(); break;
      case 0x02: v = BigInt(this.u16()); break;
      case 0x03: v = BigInt(this.u32()); break;
      case 0x09: v = this.sleb(); break;
      case 0x0a: { const x = this.u16(); v = BigInt(x >= 0x8000 ? x - 0x10000 : x); break; }
      case 0x0b: { const x = this.u32(); v = BigInt(x >= 0x80000000 ? x - 0x100000000 : x); break; }
      case 0x0c: v = BigInt.asIntN(64, this.u64()); break;
      default: return this.fail(`pointer format 0x${encoding.toString(16)}`);
    }
    if ((encoding & 0x70) === 0x10) v += fieldVa;
    return BigInt.asUintN(64, v);
  }
}
