import * as crypto from 'node:crypto';
import { alignUp } from '../align.js';
import { SHN_XINDEX } from '../model/constants.js';
import { viewOf } from './elf-structs.js';
import { PLAN_SECTION } from './layout-rules.js';
import { writeError } from './write-errors.js';

// The .libos.plan section: what revertElf and verifyElf need, in one self-describing record.
//
//   0  "LIBOSPLN"                8  u32 version     12 u32 header size (64)
//  16  u64 original file length  24  u64 output file length (what the digests cover)
//  32  u32 chunk size (4096)     36  u32 digest size (32, SHA-256)
//  40  u32 range count           44  u32 metadata length   48 u32 digest count   52..64 zero
//  64  range table: { u64 offset, u64 length } per changed range of the original file
//      the original bytes of those ranges, concatenated, padded to 8
//      the caller's metadata, padded to 8
//      the digest area: one SHA-256 per chunk of the output, computed with this area zeroed
//
// The digests cover the whole output, this record included (its digest area zeroed), so a
// change to the stored original bytes or metadata is caught like any other change.

const MAGIC = Buffer.from('LIBOSPLN', 'latin1');
const VERSION = 1;
const HEADER_SIZE = 64;
/** What findPlanRecord's scan may hash: this many times the file, plus a floor. */
const SCAN_HASH_FACTOR = 4;
const SCAN_HASH_FLOOR = 1 << 20;
/** Bytes of output covered by one digest, at least: see {@link chunkSizeFor}. */
export const CHUNK_SIZE = 4096;
/** About how many digests a record holds at most before its chunks grow. */
const MAX_CHUNKS = 4096;

/**
 * The chunk size for an output of `length` bytes: 4 KiB (a page), doubled until about
 * {@link MAX_CHUNKS} chunks cover the file. A 2 MB libc gets 4 KiB chunks; a 100 MB executable
 * 32 KiB ones: hashing 24,000 small chunks cost more than hashing the file (and their digests
 * added 0.8 MB to it). Readers take the size from the record.
 */
export function chunkSizeFor(length: number): number {
  let size = CHUNK_SIZE;
  while (length / size > MAX_CHUNKS) size *= 2;
  return size;
}
/** Bytes of one digest (SHA-256). */
export const DIGEST_SIZE = 32;

/** One range of the original file that the rewrite changed, with its original bytes. */
export interface OriginalRange {
  readonly offset: number;
  readonly original: Uint8Array;
}

/** A decoded .libos.plan. */
export interface PlanRecord {
  /** File offset of the record. */
  readonly at: number;
  readonly originalLength: number;
  readonly outputLength: number;
  readonly chunkSize: number;
  readonly ranges: OriginalRange[];
  readonly metadata: Uint8Array;
  /** File offset of the digest area. */
  readonly digestOffset: number;
  readonly digestCount: number;
}

/** Bytes of a record before its digest area. */
export function planRecordFixedSize(ranges: readonly OriginalRange[], metadataLength: number): number {
  const originals = ranges.reduce((sum, r) => sum + r.original.length, 0);
  return HEADER_SIZE + ranges.length * 16 + alignUp(originals, 8) + alignUp(metadataLength, 8);
}

/**
 * Writes a record at `at` in `out` with a zeroed digest area of `digestCount` entries and returns
 * the file offset of that area (filled later by {@link fillDigests}).
 */
export function putPlanRecord(
  out: Uint8Array, at: number, ranges: readonly OriginalRange[], metadata: Uint8Array,
  originalLength: number, outputLength: number, digestCount: number, chunkSize: number,
): number {
  const view = viewOf(out);
  out.set(MAGIC, at);
  view.setUint32(at + 8, VERSION, true);
  view.setUint32(at + 12, HEADER_SIZE, true);
  view.setBigUint64(at + 16, BigInt(originalLength), true);
  view.setBigUint64(at + 24, BigInt(outputLength), true);
  view.setUint32(at + 32, chunkSize, true);
  view.setUint32(at + 36, DIGEST_SIZE, true);
  view.setUint32(at + 40, ranges.length, true);
  view.setUint32(at + 44, metadata.length, true);
  view.setUint32(at + 48, digestCount, true);
  let p = at + HEADER_SIZE;
  for (const r of ranges) {
    view.setBigUint64(p, BigInt(r.offset), true);
    view.setBigUint64(p + 8, BigInt(r.original.length), true);
    p += 16;
  }
  const originalsAt = p;
  for (const r of ranges) {
    out.set(r.original, p);
    p += r.original.length;
  }
  p = originalsAt + alignUp(p - originalsAt, 8);
  out.set(metadata, p);
  return p + alignUp(metadata.length, 8);
}

/** One SHA-256 per chunk of `bytes`, computed as if [zeroAt, zeroAt + zeroLength) held zeros. */
export function chunkDigests(bytes: Uint8Array, chunkSize: number, zeroAt: number, zeroLength: number): Uint8Array[] {
  const digests: Uint8Array[] = [];
  const zeroEnd = zeroAt + zeroLength;
  for (let start = 0; start < bytes.length; start += chunkSize) {
    const end = Math.min(start + chunkSize, bytes.length);
    let chunk = bytes.subarray(start, end);
    if (zeroAt < end && zeroEnd > start) {
      // Only the chunks that hold the digest area are copied, so that they hash as written.
      chunk = Uint8Array.from(chunk);
      chunk.fill(0, Math.max(zeroAt, start) - start, Math.min(zeroEnd, end) - start);
    }
    digests.push(sha256(chunk));
  }
  return digests;
}

// crypto.hash (Node 20.12 and later) hashes in one call without a Hash object per chunk.
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash;

function sha256(chunk: Uint8Array): Uint8Array {
  return oneShot !== undefined ? oneShot('sha256', chunk, 'buffer') : crypto.createHash('sha256').update(chunk).digest();
}

/** Computes the digests of a finished output and stores them in its (zeroed) digest area. */
export function fillDigests(out: Uint8Array, digestOffset: number, digestCount: number, chunkSize: number): void {
  const digests = chunkDigests(out, chunkSize, digestOffset, digestCount * DIGEST_SIZE);
  if (digests.length !== digestCount) throw new Error(`internal: ${digests.length} chunks, ${digestCount} digest slots`);
  digests.forEach((d, i) => out.set(d, digestOffset + i * DIGEST_SIZE));
}

/**
 * Finds and decodes the .libos.plan of a rewritten file, or returns undefined when the file
 * holds none. The section header table is tried first; when it is damaged (a changed e_shoff,
 * a flipped header byte), every copy of the magic is tried, so that verifyElf can still report
 * where the damage is; such a copy counts only when its digests match most of the file (not a
 * rewritten file embedded in another). Throws ELF_BAD_PLAN when a record is found but is malformed.
 */
export function findPlanRecord(bytes: Uint8Array, stats: { hashedBytes: number } = { hashedBytes: 0 }): PlanRecord | undefined {
  const fromHeaders = planOffsetFromSections(bytes);
  if (fromHeaders !== undefined) {
    const decoded = tryDecode(bytes, fromHeaders);
    if (decoded.record !== undefined) return decoded.record;
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Each candidate hashes up to the whole file: a crafted file of a thousand records would hash
  // it a thousand times. The scan stops once it has hashed the file a few times over (a real
  // file has one record, or a handful of embedded ones).
  let hashBudget = SCAN_HASH_FACTOR * bytes.length + SCAN_HASH_FLOOR;
  for (let at = text.indexOf(MAGIC); at >= 0; at = text.indexOf(MAGIC, at + 1)) {
    const decoded = tryDecode(bytes, at);
    if (decoded.record === undefined) continue;
    const cost = Math.min(bytes.length, decoded.record.outputLength);
    if ((hashBudget -= cost) < 0) break;
    stats.hashedBytes += cost;
    if (describesThisFile(bytes, decoded.record)) return decoded.record;
  }
  // A stray copy of the magic in an ordinary file is not a plan; a section named .libos.plan is.
  if (fromHeaders !== undefined) {
    const why = tryDecode(bytes, fromHeaders).error ?? 'no valid record at its offset';
    throw writeError('ELF_BAD_PLAN', fromHeaders, `${PLAN_SECTION} is malformed: ${why}`);
  }
  return undefined;
}

/**
 * Whether a record found by scanning is this file's own, not that of a rewritten file embedded in
 * it (objcopy --add-section, an archive, a firmware image): its digests must match most of the
 * chunks they cover. Damage is local (a header field, a few bytes), and a file cut short keeps
 * its first chunks; an embedded record's chunk offsets are the inner file's, and the outer file's
 * bytes there are others.
 */
function describesThisFile(bytes: Uint8Array, record: PlanRecord): boolean {
  const covered = Math.min(bytes.length, record.outputLength);
  const whole = Math.floor(covered / record.chunkSize);
  if (whole === 0) return true; // too little left to tell: as before
  const matching = chunkMatches(bytes, record, whole * record.chunkSize).filter((m) => m).length;
  return matching * 2 > whole;
}

/**
 * For each chunk of `bytes` up to `end` (the last one may be short): whether its digest, computed
 * with the digest area zeroed, equals the one the record stores for it.
 */
export function chunkMatches(bytes: Uint8Array, record: PlanRecord, end: number): boolean[] {
  const area = record.digestCount * DIGEST_SIZE;
  const stored = bytes.subarray(record.digestOffset, record.digestOffset + area);
  return chunkDigests(bytes.subarray(0, end), record.chunkSize, record.digestOffset, area)
    .map((d, i) => Buffer.from(d).equals(stored.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE)));
}

function tryDecode(bytes: Uint8Array, at: number): { record?: PlanRecord; error?: string } {
  try {
    return { record: decodePlanRecord(bytes, at) };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** Decodes the record at `at`, checking every length against the file. */
function decodePlanRecord(bytes: Uint8Array, at: number): PlanRecord {
  const view = viewOf(bytes);
  const need = (end: number, what: string): void => {
    if (end > bytes.length) throw new Error(`${what} runs past the end of the file`);
  };
  need(at + HEADER_SIZE, 'header');
  if (!MAGIC.equals(bytes.subarray(at, at + 8))) throw new Error('bad magic');
  if (view.getUint32(at + 8, true) !== VERSION) throw new Error(`version ${view.getUint32(at + 8, true)}`);
  if (view.getUint32(at + 12, true) !== HEADER_SIZE) throw new Error('bad header size');
  const originalLength = Number(view.getBigUint64(at + 16, true));
  const outputLength = Number(view.getBigUint64(at + 24, true));
  const chunkSize = view.getUint32(at + 32, true);
  const digestSize = view.getUint32(at + 36, true);
  const rangeCount = view.getUint32(at + 40, true);
  const metadataLength = view.getUint32(at + 44, true);
  const digestCount = view.getUint32(at + 48, true);
  if (chunkSize === 0 || digestSize !== DIGEST_SIZE) throw new Error('bad chunk or digest size');
  if (!Number.isSafeInteger(outputLength) || digestCount !== Math.ceil(outputLength / chunkSize)) throw new Error('digest count does not match the output length');
  if (!Number.isSafeInteger(originalLength) || originalLength > outputLength) throw new Error('original length exceeds the output length');
  let p = at + HEADER_SIZE;
  need(p + rangeCount * 16, 'range table');
  const spans: { offset: number; length: number }[] = [];
  let originals = 0;
  for (let i = 0; i < rangeCount; i++, p += 16) {
    const offset = Number(view.getBigUint64(p, true));
    const length = Number(view.getBigUint64(p + 8, true));
    if (!Number.isSafeInteger(offset + length) || offset + length > originalLength) throw new Error(`range ${i} lies outside the original file`);
    spans.push({ offset, length });
    originals += length;
  }
  need(p + alignUp(originals, 8), 'original bytes');
  const ranges: OriginalRange[] = [];
  let q = p;
  for (const s of spans) {
    ranges.push({ offset: s.offset, original: bytes.subarray(q, q + s.length) });
    q += s.length;
  }
  p += alignUp(originals, 8);
  need(p + metadataLength, 'metadata');
  const metadata = bytes.subarray(p, p + metadataLength);
  const digestOffset = p + alignUp(metadataLength, 8);
  need(digestOffset + digestCount * DIGEST_SIZE, 'digest area');
  return { at, originalLength, outputLength, chunkSize, ranges, metadata, digestOffset, digestCount };
}

// The file offset of the section named .libos.plan, read with bounds checks only: the file may
// be damaged, and any inconsistency just means "not found here".
function planOffsetFromSections(bytes: Uint8Array): number | undefined {
  if (bytes.length < 64) return undefined;
  const view = viewOf(bytes);
  const shoff = Number(view.getBigUint64(40, true));
  let shnum = view.getUint16(60, true);
  let shstrndx = view.getUint16(62, true);
  if (shoff === 0 || !Number.isSafeInteger(shoff) || shoff + 64 > bytes.length) return undefined;
  if (shnum === 0) shnum = Number(view.getBigUint64(shoff + 32, true));
  if (shstrndx === SHN_XINDEX) shstrndx = view.getUint32(shoff + 40, true);
  if (!Number.isSafeInteger(shnum) || shoff + shnum * 64 > bytes.length || shstrndx >= shnum) return undefined;
  const strOffset = Number(view.getBigUint64(shoff + shstrndx * 64 + 24, true));
  const strSize = Number(view.getBigUint64(shoff + shstrndx * 64 + 32, true));
  if (!Number.isSafeInteger(strOffset + strSize) || strOffset + strSize > bytes.length) return undefined;
  const want = Buffer.from(`${PLAN_SECTION}\0`, 'latin1');
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * 64;
    const name = view.getUint32(h, true);
    if (name + want.length > strSize) continue;
    if (want.equals(bytes.subarray(strOffset + name, strOffset + name + want.length))) {
      const offset = Number(view.getBigUint64(h + 24, true));
      return Number.isSafeInteger(offset) ? offset : undefined;
    }
  }
  return undefined;
}
