import type { ElfFile, FunctionRange } from '@libos/elfkit';
import { hex } from './iced.js';

/**
 * Finds the function that holds an address. Ranges may nest or overlap (a local label with its own
 * symbol, a `.cold` part): the innermost one, the latest start that still covers the address, wins,
 * because its start is the nearest known instruction boundary.
 */
export class FunctionIndex {
  readonly functions: readonly FunctionRange[];
  private readonly starts: BigUint64Array;
  private readonly ends: BigUint64Array;
  /** maxEnd[i] = the largest end among functions[0..i]: where the gap after them starts. */
  private readonly maxEnd: BigUint64Array;
  /**
   * parent[i] = the latest j < i whose range covers functions[i].start, or -1. Every function
   * between the two ends at or before that start, so a lookup skips them all: one function that
   * spans 80,000 small ones made a lookup walk them one by one.
   */
  private readonly parent: Int32Array;

  constructor(functions: readonly FunctionRange[]) {
    // functions() comes sorted by start; sort a copy only for input that is not (checking is O(n)).
    let isSorted = true;
    for (let i = 1; i < functions.length && isSorted; i++) isSorted = (functions[i - 1] as FunctionRange).start <= (functions[i] as FunctionRange).start;
    const sorted = isSorted ? functions : [...functions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    this.functions = sorted;
    this.starts = new BigUint64Array(sorted.length);
    this.ends = new BigUint64Array(sorted.length);
    this.maxEnd = new BigUint64Array(sorted.length);
    this.parent = new Int32Array(sorted.length);
    let maxEnd = 0n;
    sorted.forEach((f, i) => {
      this.starts[i] = f.start;
      this.ends[i] = f.end;
      if (f.end > maxEnd) maxEnd = f.end;
      this.maxEnd[i] = maxEnd;
      let j = i - 1;
      while (j >= 0 && (this.ends[j] as bigint) <= f.start) j = this.parent[j] as number;
      this.parent[i] = j;
    });
  }

  /**
   * The gap between known functions that holds `va`, when it is at most `maxGap` bytes: from the
   * largest end before `va` to the next start after it. `name` is the function the gap follows.
   */
  gapAround(va: bigint, maxGap: number): FunctionRange | undefined {
    const lo = this.upperBound(va);
    if (lo === 0 || lo >= this.starts.length) return undefined;
    const prevEnd = this.maxEnd[lo - 1] as bigint;
    const nextStart = this.starts[lo] as bigint;
    if (prevEnd > va || nextStart - prevEnd > BigInt(maxGap)) return undefined;
    let name: string | undefined;
    for (let i = lo - 1; i >= 0; i--) {
      const f = this.functions[i] as FunctionRange;
      if (f.end === prevEnd) {
        name = f.name;
        break;
      }
    }
    return { start: prevEnd, end: nextStart, ...(name !== undefined ? { name } : {}), source: 'eh_frame' };
  }

  /** Index of the first function whose start is > va. */
  private upperBound(va: bigint): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.starts[mid] as bigint) <= va) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The innermost non-empty function with start <= va < end: the latest start that covers va. */
  containing(va: bigint): FunctionRange | undefined {
    let i = this.upperBound(va) - 1;
    while (i >= 0 && (this.ends[i] as bigint) <= va) i = this.parent[i] as number;
    return i >= 0 ? this.functions[i] : undefined;
  }
}

const indexes = new WeakMap<object, FunctionIndex>();

/** The FunctionIndex of `elf.functions()`, built once per ElfFile. */
export function functionIndexOf(elf: Pick<ElfFile, 'functions'>): FunctionIndex {
  let index = indexes.get(elf);
  if (index === undefined) {
    index = new FunctionIndex(elf.functions());
    indexes.set(elf, index);
  }
  return index;
}

/**
 * The function that holds `va`, the first byte after a site, or (where the site ends a function)
 * the one that holds the byte before it: the lookup {@link functionAfterSite} makes.
 */
export function functionAfter(elf: Pick<ElfFile, 'functions'>, va: bigint): FunctionRange | undefined {
  const index = functionIndexOf(elf);
  return index.containing(va) ?? (va > 0n ? index.containing(va - 1n) : undefined);
}

/** The function whose code follows a site, with where its bytes are in the file. */
export interface CodeAfter {
  fn: FunctionRange;
  /** Bytes from the function's start to its end. */
  size: number;
  fileOffset: number;
}

/**
 * The function that holds `va`, the first byte after a site (or, where the site ends a function,
 * the one that holds the site), for the analyses that decode onward from there; a reason when
 * there is none or its bytes are not all in the file. `fn` overrides the lookup.
 */
export function functionAfterSite(elf: Pick<ElfFile, 'vaToOffset' | 'functions'>, va: bigint, fn?: FunctionRange): CodeAfter | { reason: string } {
  const found = fn ?? functionAfter(elf, va);
  if (found === undefined) return { reason: `${hex(va)} is in no known function` };
  if (va === found.end) return { reason: `${hex(va)} is the end of the function at ${hex(found.start)}` };
  if (va < found.start || va > found.end) return { reason: `${hex(va)} is outside the function at ${hex(found.start)}` };
  const size = Number(found.end - found.start);
  const fileOffset = elf.vaToOffset(found.start);
  if (fileOffset === undefined || elf.vaToOffset(found.end - 1n) !== fileOffset + size - 1) {
    return { reason: `the function at ${hex(found.start)} is not file-backed` };
  }
  return { fn: found, size, fileOffset };
}
