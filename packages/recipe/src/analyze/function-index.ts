import type { ElfFile, FunctionRange } from '@libos/elfkit';

/**
 * Finds the function that holds an address. Ranges may nest or overlap (a local label with its own
 * symbol, a `.cold` part): the innermost one, the latest start that still covers the address, wins,
 * because its start is the nearest known instruction boundary.
 */
export class FunctionIndex {
  readonly functions: readonly FunctionRange[];
  private readonly starts: BigUint64Array;
  /** maxEnd[i] = the largest end among functions[0..i]: lets the backward scan stop early. */
  private readonly maxEnd: BigUint64Array;

  constructor(functions: readonly FunctionRange[]) {
    // functions() comes sorted by start; sort a copy only for input that is not (checking is O(n)).
    let isSorted = true;
    for (let i = 1; i < functions.length && isSorted; i++) isSorted = (functions[i - 1] as FunctionRange).start <= (functions[i] as FunctionRange).start;
    const sorted = isSorted ? functions : [...functions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    this.functions = sorted;
    this.starts = new BigUint64Array(sorted.length);
    this.maxEnd = new BigUint64Array(sorted.length);
    let maxEnd = 0n;
    sorted.forEach((f, i) => {
      this.starts[i] = f.start;
      if (f.end > maxEnd) maxEnd = f.end;
      this.maxEnd[i] = maxEnd;
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

  /** The innermost non-empty function with start <= va < end. */
  containing(va: bigint): FunctionRange | undefined {
    const lo = this.upperBound(va);
    for (let i = lo - 1; i >= 0 && (this.maxEnd[i] as bigint) > va; i--) {
      const f = this.functions[i] as FunctionRange;
      if (f.end > va) return f;
    }
    return undefined;
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
