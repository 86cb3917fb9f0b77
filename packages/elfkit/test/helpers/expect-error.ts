import * as assert from 'uvu/assert';
import { ElfError, type ElfErrorCode } from '../../src/index.js';

/** Asserts that `fn` throws an ElfError with this code and file offset. */
export function expectElfError(fn: () => unknown, code: ElfErrorCode, offset: number, what: string = code): ElfError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ElfError, `${what}: expected an ElfError, got ${String(e)}`);
    const err = e as ElfError;
    assert.is(err.code, code, `${what}: code (${err.message})`);
    assert.is(err.offset, offset, `${what}: offset (${err.message})`);
    return err;
  }
  assert.unreachable(`${what}: no error thrown`);
  throw new Error('unreachable');
}

/** Little-endian field writers for building corrupt copies. */
export function writer(bytes: Uint8Array): {
  u8(at: number, v: number): void; u16(at: number, v: number): void; u32(at: number, v: number): void;
  u64(at: number, v: bigint): void; u32At(at: number): number; u64At(at: number): bigint;
} {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    u8: (at, v) => view.setUint8(at, v),
    u16: (at, v) => view.setUint16(at, v, true),
    u32: (at, v) => view.setUint32(at, v, true),
    u64: (at, v) => view.setBigUint64(at, v, true),
    u32At: (at) => view.getUint32(at, true),
    u64At: (at) => view.getBigUint64(at, true),
  };
}
