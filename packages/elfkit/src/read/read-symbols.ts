import { ElfError } from '../errors.js';
import { SHT_STRTAB, SYM_SIZE } from '../model/constants.js';
import type { ElfSymbol, Section } from '../model/types.js';
import { StringTable, type Cursor } from './cursor.js';

/** The string table a section links to, checked to be one. */
export function linkedStrtab(sections: readonly Section[], s: Section): Section {
  const t = sections[s.link];
  if (t === undefined || t.type !== SHT_STRTAB) {
    throw new ElfError('ELF_BAD_INDEX', s.headerOffset + 40, `section ${s.index} (${s.name}) links to ${s.link}, which is not a string table`);
  }
  return t;
}

/** Checks that a table section's entry size is `entsize` and its size a multiple of it; returns the count. */
export function tableCount(s: Section, entsize: number): number {
  // entsize 0 is tolerated (some tools leave it unset); any other value must be the ABI's.
  if (s.entsize !== entsize && s.entsize !== 0) {
    throw new ElfError('ELF_BAD_ENTSIZE', s.headerOffset + 56, `section ${s.index} (${s.name}): sh_entsize ${s.entsize}, expected ${entsize}`);
  }
  if (s.size % entsize !== 0) {
    throw new ElfError('ELF_BAD_ENTSIZE', s.headerOffset + 32, `section ${s.index} (${s.name}): size ${s.size} is not a multiple of ${entsize}`);
  }
  return s.size / entsize;
}

/** Reads every symbol of a SHT_SYMTAB or SHT_DYNSYM section, names resolved through sh_link. */
export function readSymbols(c: Cursor, sections: readonly Section[], s: Section): ElfSymbol[] {
  const n = tableCount(s, SYM_SIZE);
  const str = linkedStrtab(sections, s);
  const names = new StringTable(c, str.offset, str.size);
  const out: ElfSymbol[] = new Array(n);
  const view = c.view;
  for (let i = 0; i < n; i++) {
    // The section's range was checked against the file when sections were read.
    const at = s.offset + i * SYM_SIZE;
    const info = view.getUint8(at + 4);
    const lo = view.getUint32(at + 16, true);
    const hi = view.getUint32(at + 20, true);
    if (hi > 0x1fffff) throw new ElfError('ELF_BAD_OFFSET', at + 16, `symbol ${i}: st_size is absurdly large`);
    out[i] = {
      index: i,
      name: names.get(view.getUint32(at, true), at),
      value: view.getBigUint64(at + 8, true),
      size: hi * 0x100000000 + lo,
      type: info & 0xf,
      bind: info >> 4,
      visibility: view.getUint8(at + 5) & 3,
      section: view.getUint16(at + 6, true),
    };
  }
  return out;
}
