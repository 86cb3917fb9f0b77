import { ElfError } from '../errors.js';
import { SHN_LORESERVE, SHN_UNDEF, SHT_STRTAB, STB_LOCAL, STT_FUNC, STT_GNU_IFUNC, SYM_SIZE } from '../model/constants.js';
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

/** Whether a symbol of this type (STT_*) and st_shndx is a function defined in the file. */
export function definesFunction(type: number, section: number): boolean {
  return (type === STT_FUNC || type === STT_GNU_IFUNC) && section !== SHN_UNDEF && section < SHN_LORESERVE;
}

/**
 * The defined function symbols (STT_FUNC, STT_GNU_IFUNC, in a section) of some symbol tables, in
 * table order, as columns: no object, bigint or string per symbol. Function ranges need a name
 * only for the one symbol each range is named after, and node's 150,000 function symbols as
 * objects cost more than everything else in finding its sites. Every symbol's st_size is checked as
 * readSymbols checks it; names are read (and checked) by whoever asks for one.
 */
export interface FunctionSymbols {
  readonly count: number;
  /** st_value. */
  readonly values: Float64Array;
  readonly sizes: Float64Array;
  /** st_shndx. */
  readonly sections: Uint32Array;
  /** 1 when not STB_LOCAL. */
  readonly global: Uint8Array;
  /** Whether st_name points at an empty string (a name past the table counts as not empty). */
  readonly unnamed: Uint8Array;
  /** The symbol's name, read from its table. */
  name(i: number): string;
}

/** {@link FunctionSymbols} of `tables`, or undefined when a value is 2^53 or more (take readSymbols then). */
export function readFunctionSymbols(c: Cursor, sections: readonly Section[], tables: readonly Section[]): FunctionSymbols | undefined {
  const view = c.view;
  const bytes = c.bytes;
  // Room for every entry; each table is checked when its turn comes, in readSymbols's order.
  let total = 0;
  for (const s of tables) total += Math.floor(s.size / SYM_SIZE);
  const values = new Float64Array(total);
  const sizes = new Float64Array(total);
  const sectionOf = new Uint32Array(total);
  const global = new Uint8Array(total);
  const unnamed = new Uint8Array(total);
  const nameIndex = new Uint32Array(total);
  const at = new Float64Array(total);
  const tableOf = new Uint8Array(total);
  const strings: StringTable[] = [];
  let count = 0;
  for (const s of tables) {
    const n = tableCount(s, SYM_SIZE);
    const str = linkedStrtab(sections, s);
    strings.push(new StringTable(c, str.offset, str.size));
    for (let i = 0; i < n; i++) {
      const base = s.offset + i * SYM_SIZE;
      const hi = view.getUint32(base + 20, true);
      if (hi > 0x1fffff) throw new ElfError('ELF_BAD_OFFSET', base + 16, `symbol ${i}: st_size is absurdly large`);
      const info = view.getUint8(base + 4);
      const type = info & 0xf;
      const section = view.getUint16(base + 6, true);
      if (!definesFunction(type, section)) continue;
      const valueHi = view.getUint32(base + 12, true);
      if (valueHi > 0x1fffff) return undefined;
      const name = view.getUint32(base, true);
      values[count] = valueHi * 0x100000000 + view.getUint32(base + 8, true);
      sizes[count] = hi * 0x100000000 + view.getUint32(base + 16, true);
      sectionOf[count] = section;
      global[count] = info >> 4 !== STB_LOCAL ? 1 : 0;
      unnamed[count] = name < str.size && bytes[str.offset + name] === 0 ? 1 : 0;
      nameIndex[count] = name;
      at[count] = base;
      tableOf[count] = strings.length - 1;
      count++;
    }
  }
  return {
    count,
    values: values.subarray(0, count),
    sizes: sizes.subarray(0, count),
    sections: sectionOf.subarray(0, count),
    global: global.subarray(0, count),
    unnamed: unnamed.subarray(0, count),
    name: (i) => strings[tableOf[i]!]!.get(nameIndex[i]!, at[i]!),
  };
}
