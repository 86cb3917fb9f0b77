import { isAscii } from 'node:buffer';
import { ElfError, type ElfErrorCode } from '../errors.js';

// Largest value a 64-bit field may hold and still be a file offset or size: 2^53 - 1.
const HI_LIMIT = 0x1fffff;

/**
 * Bounds-checked little-endian reads over the file's one buffer. Every read checks its range
 * first, so a bad file gives an ElfError, never a RangeError from DataView.
 */
export class Cursor {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly length: number;
  /** A Buffer view of the same memory, for native string decoding. */
  readonly text: Buffer;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.length = bytes.byteLength;
  }

  /** Throws ELF_TRUNCATED unless [offset, offset+size) lies in the file. */
  need(offset: number, size: number, what: string, code: ElfErrorCode = 'ELF_TRUNCATED'): void {
    if (!(offset >= 0 && size >= 0 && offset + size <= this.length)) {
      throw new ElfError(code, offset, `${what}: ${size} bytes at 0x${offset.toString(16)} run past the end of the file (0x${this.length.toString(16)})`);
    }
  }

  u8(offset: number): number {
    this.need(offset, 1, 'u8');
    return this.view.getUint8(offset);
  }

  u16(offset: number): number {
    this.need(offset, 2, 'u16');
    return this.view.getUint16(offset, true);
  }

  u32(offset: number): number {
    this.need(offset, 4, 'u32');
    return this.view.getUint32(offset, true);
  }

  i32(offset: number): number {
    this.need(offset, 4, 'i32');
    return this.view.getInt32(offset, true);
  }

  u64(offset: number): bigint {
    this.need(offset, 8, 'u64');
    return this.view.getBigUint64(offset, true);
  }

  i64(offset: number): bigint {
    this.need(offset, 8, 'i64');
    return this.view.getBigInt64(offset, true);
  }

  /**
   * A 64-bit field that is a file offset or size, as a number. Values past 2^53 cannot be
   * offsets in any file we can hold, so they are reported with `code` at the field's offset.
   */
  u64n(offset: number, code: ElfErrorCode, what: string): number {
    this.need(offset, 8, what);
    const lo = this.view.getUint32(offset, true);
    const hi = this.view.getUint32(offset + 4, true);
    if (hi > HI_LIMIT) throw new ElfError(code, offset, `${what} is absurdly large (0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')})`);
    return hi * 0x100000000 + lo;
  }
}

// Lookups scan for their NUL natively until they have scanned this many times the table's size
// (plus a floor); then the table is indexed once, so that many lookups into long runs cannot take
// quadratic time. Real tables never get there: each string is scanned once per lookup.
const SCAN_BUDGET_FACTOR = 4;
const SCAN_BUDGET_FLOOR = 1 << 20;

/**
 * A string table [offset, offset+size) of the file. Lookups check the index and that the string
 * ends inside the table.
 */
export class StringTable {
  private nextNul: Int32Array | undefined;
  private budget: number;
  /**
   * The whole table as one JavaScript string when it is all ASCII (symbol tables are): a name is
   * then a slice of it, found by a search in JavaScript, instead of two calls into Node per name
   * (node's 150,000 symbol names: 47 -> 31 ms, cold). Made at the first lookup; null when not ASCII.
   */
  private ascii: string | null | undefined;

  private decodeBudget: number;

  constructor(private readonly c: Cursor, readonly offset: number, readonly size: number) {
    this.budget = size * SCAN_BUDGET_FACTOR + SCAN_BUDGET_FLOOR;
    this.decodeBudget = this.budget;
  }

  /** The string at `index`; `at` is the file offset reported when the index is bad. */
  get(index: number, at: number): string {
    if (index >= this.size) {
      throw new ElfError('ELF_BAD_STRING', at, `string index ${index} is past the end of its table (size ${this.size})`);
    }
    if (this.ascii === undefined) {
      const table = this.c.text.subarray(this.offset, this.offset + this.size);
      this.ascii = isAscii(table) ? table.toString('latin1') : null;
    }
    const ascii = this.ascii;
    // The end of the string, relative to the table; -1 when it does not end inside the table.
    let end = -1;
    if (this.nextNul === undefined) {
      let found: number;
      if (ascii !== null) found = ascii.indexOf('\0', index);
      else {
        const at = this.c.bytes.indexOf(0, this.offset + index);
        found = at < 0 ? -1 : at - this.offset;
      }
      this.budget -= (found < 0 ? this.size : found) - index;
      if (found >= 0 && found < this.size) end = found;
      if (this.budget < 0) this.nextNul = this.index();
    } else {
      end = this.nextNul[index]!;
    }
    if (end < 0) throw new ElfError('ELF_BAD_STRING', at, `string at index ${index} is not NUL-terminated inside its table`);
    if (end === index) return '';
    if (ascii !== null) return ascii.slice(index, end);
    // Each name decoded here is a copy of its bytes: many names pointing into one long string (a
    // crafted table) would copy it again and again, so the bytes decoded are limited like the scan.
    this.decodeBudget -= end - index;
    if (this.decodeBudget < 0) throw new ElfError('ELF_BAD_STRING', at, `the names of this table overlap far more than a linker writes them (over ${SCAN_BUDGET_FACTOR}x its ${this.size} bytes decoded)`);
    return this.c.text.toString('utf8', this.offset + index, this.offset + end);
  }

  // For every position, the table-relative offset of the next NUL (-1: none): native indexOf and
  // fill, once per table.
  private index(): Int32Array {
    const next = new Int32Array(this.size);
    const end = this.offset + this.size;
    let pos = 0;
    while (pos < this.size) {
      const p = this.c.bytes.indexOf(0, this.offset + pos);
      if (p < 0 || p >= end) {
        next.fill(-1, pos);
        break;
      }
      const rel = p - this.offset;
      next.fill(rel, pos, rel + 1);
      pos = rel + 1;
    }
    return next;
  }
}
