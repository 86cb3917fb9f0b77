import { ElfError } from '../errors.js';
import type { Cursor } from './cursor.js';

/** One FDE's address range [start, end) and the file offset of the FDE. */
export interface FdeRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly offset: number;
  /**
   * From a CIE with the 'S' augmentation: a signal trampoline (glibc's __restore_rt), whose FDE
   * starts one byte before its code so that the unwinder's "return address - 1" lookup finds it.
   */
  readonly signalFrame?: boolean;
}

/** What a CIE says that its FDEs' call-frame instructions need. */
export interface Cie {
  /** File offset of the CIE. */
  readonly offset: number;
  readonly codeAlign: number;
  readonly dataAlign: number;
  readonly returnAddressRegister: number;
  /** The CIE's initial instructions: file offsets [instructions, end). */
  readonly instructions: number;
  readonly end: number;
  /** DW_EH_PE_* encoding of the FDEs' pc_begin (and of DW_CFA_set_loc). */
  readonly fdeEncoding: number;
  /** 'z' augmentation: every FDE carries an augmentation data length. */
  readonly augmentationData: boolean;
  /** 'S' augmentation: a signal trampoline, whose FDE starts one byte before its code. */
  readonly signalFrame: boolean;
  /** 'L' augmentation: the DW_EH_PE_* encoding of each FDE's LSDA pointer (C++ exception tables). */
  readonly lsdaEncoding?: number;
}

/** An FDE with its CIE and where its call-frame instructions are. */
export interface Fde extends FdeRange {
  readonly cie: Cie;
  /** The FDE's instructions: file offsets [instructions, entryEnd). */
  readonly instructions: number;
  readonly entryEnd: number;
  /**
   * The va of the FDE's language-specific data (its exception table in .gcc_except_table), when
   * its CIE says FDEs carry one and this one's is not omitted; 'unreadable' when the pointer is
   * malformed.
   */
  readonly lsda?: bigint | 'unreadable';
}

// DW_EH_PE_* pointer encodings (LSB "Exception Frame" spec).
const PE_OMIT = 0xff;
const PE_ABSPTR = 0x00;
const PE_ULEB128 = 0x01;
const PE_UDATA2 = 0x02;
const PE_UDATA4 = 0x03;
const PE_UDATA8 = 0x04;
const PE_SLEB128 = 0x09;
const PE_SDATA2 = 0x0a;
const PE_SDATA4 = 0x0b;
const PE_SDATA8 = 0x0c;
const PE_PCREL = 0x10;
const PE_INDIRECT = 0x80;

/**
 * A small cursor bounded by one CIE/FDE, so that nothing reads into the next entry. Every failure
 * is an ELF_BAD_EH_FRAME at the entry's file offset.
 */
export class EntryReader {
  at: number;
  constructor(private readonly c: Cursor, start: number, readonly end: number, private readonly entry: number) {
    this.at = start;
  }

  fail(message: string): never {
    throw new ElfError('ELF_BAD_EH_FRAME', this.entry, message);
  }

  private take(n: number): number {
    const at = this.at;
    if (at + n > this.end) this.fail(`entry field at 0x${at.toString(16)} runs past the entry's end`);
    this.at += n;
    return at;
  }

  u8(): number { return this.c.u8(this.take(1)); }
  u16(): number { return this.c.u16(this.take(2)); }
  u32(): number { return this.c.u32(this.take(4)); }

  /** A DWARF block: a ULEB128 length and that many bytes (a copy). */
  block(): Uint8Array {
    const n = this.uleb();
    if (n > BigInt(this.end - this.at)) this.fail(`block of ${n} bytes at 0x${this.at.toString(16)} runs past the entry's end`);
    const at = this.take(Number(n));
    return this.c.bytes.slice(at, at + Number(n));
  }

  cstring(): string {
    let s = '';
    for (;;) {
      const b = this.u8();
      if (b === 0) return s;
      if (s.length > 32) this.fail('augmentation string too long');
      s += String.fromCharCode(b);
    }
  }

  uleb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
    return this.fail('LEB128 longer than 10 bytes');
  }

  /**
   * Number(uleb()), read with numbers: a value of up to seven bytes (49 bits) is exact either way;
   * a longer one is read again the bigint way (same value, same errors).
   */
  ulebNumber(): number {
    const start = this.at;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    this.at = start;
    return Number(this.uleb());
  }

  sleb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) {
        if ((b & 0x40) !== 0) result -= 1n << shift;
        return result;
      }
    }
    return this.fail('LEB128 longer than 10 bytes');
  }

  /** An encoded pointer; `fieldVa` is the va of its first byte (for pcrel). */
  pointer(encoding: number, fieldVa: bigint, applyBase: boolean): bigint {
    if (encoding === PE_OMIT) return 0n;
    if ((encoding & PE_INDIRECT) !== 0 && applyBase) this.fail(`indirect pointer encoding 0x${encoding.toString(16)} cannot be resolved statically`);
    let v: bigint;
    switch (encoding & 0x0f) {
      case PE_ABSPTR: case PE_UDATA8: v = this.c.u64(this.take(8)); break;
      case PE_ULEB128: v = this.uleb(); break;
      case PE_UDATA2: v = BigInt(this.c.u16(this.take(2))); break;
      case PE_UDATA4: v = BigInt(this.c.u32(this.take(4))); break;
      case PE_SLEB128: v = this.sleb(); break;
      case PE_SDATA2: { const x = this.c.u16(this.take(2)); v = BigInt(x >= 0x8000 ? x - 0x10000 : x); break; }
      case PE_SDATA4: v = BigInt(this.c.i32(this.take(4))); break;
      case PE_SDATA8: v = this.c.i64(this.take(8)); break;
      default: return this.fail(`unknown pointer format 0x${(encoding & 0x0f).toString(16)}`);
    }
    if (!applyBase) return v;
    switch (encoding & 0x70) {
      case 0: return BigInt.asUintN(64, v);
      case PE_PCREL: return BigInt.asUintN(64, v + fieldVa);
      default: return this.fail(`pointer application 0x${(encoding & 0x70).toString(16)} is not supported in .eh_frame`);
    }
  }
}

// Function discovery and unwind rows both read the same .eh_frame: walked once per ElfFile (per
// file read, as every table the reader keeps: bytes changed after readElf are not seen again).
const walked = new WeakMap<object, readonly Fde[]>();

/** {@link readEhFrame} of `section` (the file's .eh_frame), once per `elf`; the list is shared, never change it. */
export function sectionFdes(elf: object, c: Cursor, section: { offset: number; size: number; va: bigint }): readonly Fde[] {
  let fdes = walked.get(elf);
  if (fdes === undefined) walked.set(elf, (fdes = readEhFrame(c, section.offset, section.size, section.va)));
  return fdes;
}

/**
 * Walks the CIEs and FDEs of an .eh_frame at [offset, offset+size) whose first byte is at `va`
 * and returns each FDE (pc range, CIE, instructions) in file order. Every entry must fit inside
 * the section, and the walk stops at a zero terminator or the end, so it always ends. FDEs with
 * an empty range are left out. `general` (for tests) reads every FDE the general way, without the
 * fast path for the usual encoding; the answers are the same.
 */
export function readEhFrame(c: Cursor, offset: number, size: number, va: bigint, options: { general?: boolean } = {}): Fde[] {
  c.need(offset, size, '.eh_frame', 'ELF_BAD_OFFSET');
  const end = offset + size;
  const cies = new Map<number, Cie>();
  const out: Fde[] = [];
  // The section's va as a number, for the common FDE's fast path (-1: past 2^53, take bigints).
  const vaNumber = options.general !== true && va + BigInt(size) < 2n ** 53n ? Number(va) : -1;
  let at = offset;
  while (at + 4 <= end) {
    let length = c.u32(at);
    if (length === 0) break;
    let header = 4;
    if (length === 0xffffffff) {
      if (at + 12 > end) throw new ElfError('ELF_BAD_EH_FRAME', at, '64-bit entry length runs past the section');
      length = c.u64n(at + 4, 'ELF_BAD_EH_FRAME', 'entry length');
      header = 12;
    }
    const idAt = at + header;
    const entryEnd = idAt + length;
    if (length < 4 || entryEnd > end) throw new ElfError('ELF_BAD_EH_FRAME', at, `entry of length ${length} runs past the end of .eh_frame`);
    const id = c.u32(idAt);
    if (id !== 0) {
      const cieAt = idAt - id;
      if (cieAt < offset || cieAt >= at) throw new ElfError('ELF_BAD_EH_FRAME', idAt, `FDE's CIE pointer ${id} leaves the section`);
      let cie = cies.get(cieAt);
      if (cie === undefined) {
        cie = readCie(c, cieAt, end);
        cies.set(cieAt, cie);
      }
      const fast = vaNumber >= 0 && cie.fdeEncoding === PE_PCREL_SDATA4 && (cie.lsdaEncoding === undefined || FAST_LSDA.has(cie.lsdaEncoding))
        ? pcrelSdata4Fde(c, vaNumber + (idAt + 4 - offset), idAt + 4, entryEnd, cie.augmentationData, cie.lsdaEncoding) : undefined;
      if (fast !== undefined) {
        if (fast !== EMPTY_RANGE) push(out, fast.start, fast.end, at, cie, fast.instructions, entryEnd, fast.lsda);
      } else {
        const r = new EntryReader(c, idAt + 4, entryEnd, at);
        const fieldVa = va + BigInt(idAt + 4 - offset);
        const start = r.pointer(cie.fdeEncoding, fieldVa, true);
        const range = r.pointer(cie.fdeEncoding & 0x0f, 0n, false);
        // The instructions follow the augmentation data; a length past the entry is reported by
        // whoever runs them (function ranges do not need them).
        let instructions = r.at;
        let lsda: bigint | 'unreadable' | undefined;
        if (cie.augmentationData && r.at < entryEnd) {
          const length = r.ulebNumber();
          instructions = r.at + length;
          // Within the augmentation data and the entry both: a length past the entry reads no
          // bytes of the next one.
          if (cie.lsdaEncoding !== undefined && cie.lsdaEncoding !== PE_OMIT) lsda = readLsdaPointer(c, r.at, Math.min(instructions, entryEnd), at, cie.lsdaEncoding, va + BigInt(r.at - offset));
        }
        if (range > 0n) push(out, start, BigInt.asUintN(64, start + range), at, cie, instructions, entryEnd, lsda);
      }
    } else if (!cies.has(at)) {
      cies.set(at, readCie(c, at, end));
    }
    at = entryEnd;
  }
  return out;
}

// Every FDE gets the same properties in the same order (one object shape for the code that walks
// tens of thousands of them), signalFrame and lsda included when they do not apply.
function push(out: Fde[], start: bigint, end: bigint, offset: number, cie: Cie, instructions: number, entryEnd: number, lsda?: bigint | 'unreadable'): void {
  out.push({ start, end, offset, signalFrame: cie.signalFrame, cie, instructions, entryEnd, lsda });
}

/**
 * The LSDA pointer at the start of an FDE's augmentation data [at, end) (`fieldVa` its va):
 * undefined for none (a zero), 'unreadable' for a bad encoding or a pointer past the data. Function
 * ranges do not need it, so a malformed one spoils only what is built on it.
 */
function readLsdaPointer(c: Cursor, at: number, end: number, entry: number, encoding: number, fieldVa: bigint): bigint | 'unreadable' | undefined {
  try {
    // As the unwinder reads it: a raw zero is no LSDA, whatever the encoding says to add to it.
    if (new EntryReader(c, at, end, entry).pointer(encoding & 0x0f, 0n, false) === 0n) return undefined;
    return new EntryReader(c, at, end, entry).pointer(encoding, fieldVa, true);
  } catch (e) {
    if (e instanceof ElfError) return 'unreadable';
    throw e;
  }
}

/** DW_EH_PE_pcrel | DW_EH_PE_sdata4: how GCC and Clang encode every FDE's pc_begin. */
const PE_PCREL_SDATA4 = PE_PCREL | PE_SDATA4;
const EMPTY_RANGE = 'empty';

/**
 * An FDE of the usual shape read with numbers instead of bigints: pc_begin pcrel sdata4, pc_range
 * sdata4, and (with 'z') a one-byte augmentation length. `fieldVa` is the va of pc_begin, at file
 * offset `at`. Undefined for anything else (a field past the entry, an address outside
 * [0, 2^53), a longer length), which the general reader then reads, and reports, as before.
 */
function pcrelSdata4Fde(
  c: Cursor, fieldVa: number, at: number, entryEnd: number, augmentationData: boolean, lsdaEncoding: number | undefined,
): { start: bigint; end: bigint; instructions: number; lsda?: bigint } | typeof EMPTY_RANGE | undefined {
  if (at + 8 > entryEnd) return undefined;
  const start = fieldVa + c.i32(at);
  const range = c.i32(at + 4);
  let instructions = at + 8;
  let lsda: number | undefined;
  if (augmentationData && instructions < entryEnd) {
    const length = c.u8(instructions);
    if (length >= 0x80) return undefined;
    if (lsdaEncoding !== undefined) {
      // The LSDA pointer, 4 bytes at the start of the augmentation data (a raw zero is none).
      const dataAt = instructions + 1;
      if (length < 4 || dataAt + 4 > entryEnd) return undefined;
      const raw = lsdaEncoding === PE_PCREL_SDATA4 ? c.i32(dataAt) : c.u32(dataAt);
      if (raw !== 0) {
        lsda = lsdaEncoding === PE_PCREL_SDATA4 ? fieldVa + (dataAt - at) + raw : raw;
        if (lsda < 0 || lsda >= 2 ** 53) return undefined;
      }
    }
    instructions += 1 + length;
  } else if (lsdaEncoding !== undefined) {
    return undefined;
  }
  if (start < 0 || start + Math.max(range, 0) >= 2 ** 53) return undefined;
  if (range <= 0) return EMPTY_RANGE;
  return lsda === undefined ? { start: BigInt(start), end: BigInt(start + range), instructions } : { start: BigInt(start), end: BigInt(start + range), instructions, lsda: BigInt(lsda) };
}

/** LSDA pointer encodings the fast path reads: pcrel sdata4 (PIC) and udata4 (non-PIC), as GCC writes them. */
const FAST_LSDA = new Set([PE_PCREL_SDATA4, PE_UDATA4]);

function readCie(c: Cursor, at: number, sectionEnd: number): Cie {
  let length = c.u32(at);
  let header = 4;
  if (length === 0xffffffff) {
    length = c.u64n(at + 4, 'ELF_BAD_EH_FRAME', 'CIE length');
    header = 12;
  }
  const entryEnd = at + header + length;
  if (length < 4 || entryEnd > sectionEnd || c.u32(at + header) !== 0) {
    throw new ElfError('ELF_BAD_EH_FRAME', at, 'FDE points at something that is not a CIE');
  }
  const r = new EntryReader(c, at + header + 4, entryEnd, at);
  const version = r.u8();
  if (version !== 1 && version !== 3 && version !== 4) r.fail(`CIE version ${version}`);
  const augmentation = r.cstring();
  if (version === 4) { r.u8(); r.u8(); }
  if (augmentation.includes('eh')) r.pointer(PE_ABSPTR, 0n, false);
  const codeAlign = r.ulebNumber();
  const dataAlign = Number(r.sleb());
  const returnAddressRegister = version === 1 ? r.u8() : r.ulebNumber();
  let fdeEncoding = PE_ABSPTR;
  let lsdaEncoding: number | undefined;
  const augmentationData = augmentation.startsWith('z');
  const signalFrame = augmentationData && augmentation.includes('S');
  let instructions = r.at;
  if (augmentationData) {
    const augLength = r.ulebNumber();
    const augEnd = r.at + augLength;
    if (augEnd > entryEnd) r.fail('augmentation data runs past the CIE');
    instructions = augEnd;
    for (const ch of augmentation.slice(1)) {
      if (ch === 'R') fdeEncoding = r.u8();
      else if (ch === 'L') lsdaEncoding = r.u8();
      else if (ch === 'P') r.pointer(r.u8() & 0x0f, 0n, false);
      else if (ch === 'S' || ch === 'B' || ch === 'G') continue;
      else break; // unknown letters: the 'z' length lets us skip the rest
    }
  }
  return { offset: at, codeAlign, dataAlign, returnAddressRegister, instructions, end: entryEnd, fdeEncoding, augmentationData, signalFrame, ...(lsdaEncoding !== undefined ? { lsdaEncoding } : {}) };
}
