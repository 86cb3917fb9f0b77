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

/**
 * The NUL-terminated string at `index` in the string table [tableOffset, tableOffset+tableSize).
 * `at` is the file offset reported when the index is bad (the field that held it).
 */
export function readString(c: Cursor, tableOffset: number, tableSize: number, index: number, at: number): string {
  if (index >= tableSize) {
    throw new ElfError('ELF_BAD_STRING', at, `string index ${index} is past the end of its table (size ${tableSize})`);
  }
  const start = tableOffset + index;
  // indexOf and Buffer#toString are native: no per-byte work in JavaScript for the many names.
  const nul = c.bytes.indexOf(0, start);
  if (nul < 0 || nul >= tableOffset + tableSize) {
    throw new ElfError('ELF_BAD_STRING', at, `string at index ${index} is not NUL-terminated inside its table`);
  }
  return nul === start ? '' : c.text.toString('utf8', start, nul);
}
