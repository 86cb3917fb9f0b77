import { STB_LOCAL } from '../model/constants.js';
import type { ElfSymbol, FunctionRange } from '../model/types.js';
import type { FdeRange } from './read-eh-frame.js';
import { definesFunction, type FunctionSymbols } from './read-symbols.js';

/**
 * Function ranges from symbols (.symtab and .dynsym together), one per start address: aliases
 * merge into the widest range, named after a global symbol when there is one. A symbol without
 * a size gives an empty range (end == start): the start is still a known instruction boundary.
 */
export function functionsFromSymbols(symbols: FunctionSymbols, relocatable = false): FunctionRange[] {
  const n = symbols.count;
  const keys = symbols.values;
  // In a .o every section starts at 0: ranges are per section, ordered by section then offset.
  const sections = relocatable ? symbols.sections : new Uint32Array(n);
  // Addresses are below 2^53 here (readFunctionSymbols): sorted and merged as doubles (bigint
  // compares, arithmetic and bigint-keyed maps cost several times more on 10^5 symbols).
  const order = sortOrder(keys, sections, relocatable);
  const out: FunctionRange[] = [];
  let i = 0;
  while (i < n) {
    const start = keys[order[i]!]!;
    const section = sections[order[i]!]!;
    let end = start;
    let named = -1;
    let global = false;
    for (; i < n && keys[order[i]!] === start && sections[order[i]!] === section; i++) {
      const k = order[i]!;
      if (start + symbols.sizes[k]! > end) end = start + symbols.sizes[k]!;
      const g = symbols.global[k] === 1;
      if (symbols.unnamed[k] === 0 && (named < 0 || (g && !global))) {
        named = k;
        global = g;
      }
    }
    const startVa = BigInt(start);
    const endVa = end === start ? startVa : Number.isSafeInteger(end) ? BigInt(end) : startVa + BigInt(end - start);
    out.push(range(startVa, endVa, named < 0 ? '' : symbols.name(named), relocatable ? section : undefined));
  }
  return out;
}

/** {@link functionsFromSymbols} for tables with an address of 2^53 or more, from symbol objects. */
export function functionsFromBigSymbols(tables: readonly (readonly ElfSymbol[])[], relocatable = false): FunctionRange[] {
  const candidates: ElfSymbol[] = [];
  for (const table of tables) for (const s of table) if (definesFunction(s.type, s.section)) candidates.push(s);
  return mergeBig(candidates, relocatable);
}

// The permutation that sorts by (section, key, index). When key and index pack into one double
// below 2^53 (file addresses of ordinary programs do), a native comparator-free sort of the packed
// values does it several times faster than a comparator over 10^5 entries.
function sortOrder(keys: Float64Array, sections: Uint32Array, relocatable: boolean): Uint32Array {
  const n = keys.length;
  const order = new Uint32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) if (keys[i]! > max) max = keys[i]!;
  const scale = 2 ** Math.max(1, Math.ceil(Math.log2(n + 1)));
  if (!relocatable && max * scale + scale < Number.MAX_SAFE_INTEGER) {
    const packed = new Float64Array(n);
    for (let i = 0; i < n; i++) packed[i] = keys[i]! * scale + i;
    packed.sort();
    for (let i = 0; i < n; i++) order[i] = packed[i]! % scale;
    return order;
  }
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => sections[a]! - sections[b]! || keys[a]! - keys[b]! || a - b);
  return order;
}

function range(start: bigint, end: bigint, name: string, section: number | undefined): FunctionRange {
  // Literals of fixed shapes, not spreads: this runs once per function (10^5 in node), mostly
  // before V8 has optimised it.
  if (section !== undefined) return name !== '' ? { start, end, name, source: 'symbol', section } : { start, end, source: 'symbol', section };
  return name !== '' ? { start, end, name, source: 'symbol' } : { start, end, source: 'symbol' };
}

function mergeBig(candidates: ElfSymbol[], relocatable: boolean): FunctionRange[] {
  const sec = (s: ElfSymbol): number => (relocatable ? s.section : 0);
  candidates.sort((a, b) => sec(a) - sec(b) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  const out: FunctionRange[] = [];
  let i = 0;
  while (i < candidates.length) {
    const start = candidates[i]!.value;
    const section = sec(candidates[i]!);
    let end = start;
    let name = '';
    let global = false;
    for (; i < candidates.length && candidates[i]!.value === start && sec(candidates[i]!) === section; i++) {
      const s = candidates[i]!;
      const e = BigInt.asUintN(64, start + BigInt(s.size));
      if (e > end) end = e;
      const g = s.bind !== STB_LOCAL;
      if (s.name !== '' && (name === '' || (g && !global))) {
        name = s.name;
        global = g;
      }
    }
    out.push(range(start, end, name, relocatable ? section : undefined));
  }
  return out;
}

/**
 * Function ranges from .eh_frame FDEs, for files without .symtab. Names come from `named` (the
 * .dynsym functions) where one starts at an FDE's start; those without an FDE are added as they are.
 */
export function functionsFromFdes(fdes: readonly FdeRange[], named: readonly FunctionRange[]): FunctionRange[] {
  const dynByStart = new Map<bigint, FunctionRange>();
  for (const f of named) dynByStart.set(f.start, f);
  const out: FunctionRange[] = [];
  const seen = new Set<bigint>();
  for (const fde of fdes) {
    // A signal trampoline's FDE starts one byte early (the byte belongs to the instruction before):
    // its code starts one byte later, and decoding from the FDE's start would go out of step.
    const f = fde.signalFrame === true && fde.end - fde.start > 1n ? { start: fde.start + 1n, end: fde.end } : fde;
    if (seen.has(f.start)) continue;
    seen.add(f.start);
    const name = dynByStart.get(f.start)?.name;
    out.push(name !== undefined ? { start: f.start, end: f.end, name, source: 'eh_frame' } : { start: f.start, end: f.end, source: 'eh_frame' });
  }
  for (const f of named) if (!seen.has(f.start)) out.push(f);
  return out.sort(byStart);
}

function byStart(a: FunctionRange, b: FunctionRange): number {
  return a.start < b.start ? -1 : a.start > b.start ? 1 : 0;
}
