import { SHN_LORESERVE, SHN_UNDEF, STB_LOCAL, STT_FUNC, STT_GNU_IFUNC } from '../model/constants.js';
import type { ElfSymbol, FunctionRange } from '../model/types.js';
import type { FdeRange } from './read-eh-frame.js';

function isDefinedFunction(s: ElfSymbol): boolean {
  return (s.type === STT_FUNC || s.type === STT_GNU_IFUNC) && s.section !== SHN_UNDEF && s.section < SHN_LORESERVE;
}

/**
 * Function ranges from symbols (.symtab and .dynsym together), one per start address: aliases
 * merge into the widest range, named after a global symbol when there is one. A symbol without
 * a size gives an empty range (end == start): the start is still a known instruction boundary.
 */
export function functionsFromSymbols(tables: readonly (readonly ElfSymbol[])[]): FunctionRange[] {
  const picked = new Map<bigint, { end: bigint; name: string; global: boolean }>();
  for (const table of tables) {
    for (const s of table) {
      if (!isDefinedFunction(s)) continue;
      const end = s.value + BigInt(s.size);
      const global = s.bind !== STB_LOCAL;
      const prev = picked.get(s.value);
      if (prev === undefined) {
        picked.set(s.value, { end, name: s.name, global });
      } else {
        if (end > prev.end) prev.end = end;
        if (global && !prev.global && s.name !== '') { prev.name = s.name; prev.global = true; }
      }
    }
  }
  const out: FunctionRange[] = [];
  for (const [start, p] of picked) out.push(p.name !== '' ? { start, end: p.end, name: p.name, source: 'symbol' } : { start, end: p.end, source: 'symbol' });
  return out.sort(byStart);
}

/**
 * Function ranges from .eh_frame FDEs, for files without .symtab. Names come from .dynsym where a
 * dynamic function starts at an FDE's start; dynamic functions without an FDE are added as symbols.
 */
export function functionsFromFdes(fdes: readonly FdeRange[], dynamicSymbols: readonly ElfSymbol[]): FunctionRange[] {
  const named = functionsFromSymbols([dynamicSymbols]);
  const dynByStart = new Map<bigint, FunctionRange>();
  for (const f of named) dynByStart.set(f.start, f);
  const out: FunctionRange[] = [];
  const seen = new Set<bigint>();
  for (const f of fdes) {
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
