import { ElfError } from '../errors.js';
import { PT_LOAD, SHF_ALLOC, SHT_NOBITS } from '../model/constants.js';
import type { Section, Segment } from '../model/types.js';

interface Range {
  va: bigint;
  end: bigint; // va + file-backed size
  offset: number;
}

/**
 * Translates between virtual addresses and file offsets through the file-backed part of each
 * PT_LOAD; for a relocatable file (no segments) through the allocated sections' addresses.
 */
export class AddressMap {
  private readonly ranges: Range[];

  constructor(segments: readonly Segment[], sections: readonly Section[]) {
    const loads = segments.filter((s) => s.type === PT_LOAD && s.filesz > 0);
    if (loads.length > 0) {
      this.ranges = loads.map((s) => ({ va: s.va, end: s.va + BigInt(s.filesz), offset: s.offset }));
    } else {
      this.ranges = sections
        .filter((s) => (s.flags & SHF_ALLOC) !== 0n && s.type !== SHT_NOBITS && s.size > 0)
        .map((s) => ({ va: s.va, end: s.va + BigInt(s.size), offset: s.offset }));
    }
    // Sorted by start, ranges are disjoint when each ends before the next begins (no pairwise test:
    // a crafted file may have 65,535 of them).
    const byStart = [...this.ranges].sort((a, b) => (a.va < b.va ? -1 : a.va > b.va ? 1 : 0));
    this.disjoint = byStart.every((r, i) => i === 0 || byStart[i - 1]!.end <= r.va);
  }

  /** The range the last answer came from: lookups come in runs over one segment (RELR, a function's bytes). */
  private last = 0;
  private readonly disjoint: boolean;

  /** The file offset of `va`, or undefined when no file-backed range holds it. */
  vaToOffset(va: bigint): number | undefined {
    const ranges = this.ranges;
    // Ranges that overlap (a crafted file) answer with the first that holds va, as without the memo.
    const hit = this.disjoint ? ranges[this.last] : undefined;
    if (hit !== undefined && va >= hit.va && va < hit.end) return hit.offset + Number(va - hit.va);
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      if (va >= r.va && va < r.end) {
        this.last = i;
        return r.offset + Number(va - r.va);
      }
    }
    return undefined;
  }

  /** The va of file offset `offset`, or undefined when no loaded range holds it. */
  offsetToVa(offset: number): bigint | undefined {
    for (const r of this.ranges) {
      const size = Number(r.end - r.va);
      if (offset >= r.offset && offset < r.offset + size) return r.va + BigInt(offset - r.offset);
    }
    return undefined;
  }

  /** The file offset of [va, va+length), which must lie in one range; throws ELF_VA_UNMAPPED. */
  rangeOffset(va: bigint, length: number): number {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new ElfError('ELF_VA_UNMAPPED', -1, `bad length ${length} at va 0x${va.toString(16)}`, va);
    }
    for (const r of this.ranges) {
      if (va >= r.va && va + BigInt(length) <= r.end && (length > 0 || va < r.end)) return r.offset + Number(va - r.va);
    }
    throw new ElfError('ELF_VA_UNMAPPED', -1, `va 0x${va.toString(16)} (+${length}) is not backed by file bytes of one loaded segment`, va);
  }
}
