import { SHN_LORESERVE, SHT_STRTAB, SHT_SYMTAB, STB_GLOBAL, STT_FUNC, STT_OBJECT, STV_DEFAULT, SYM_SIZE } from '../model/constants.js';
import type { ElfFile } from '../model/types.js';
import { putSym, viewOf } from './elf-structs.js';
import type { SectionTable } from './section-table.js';
import { StringTableBuilder } from './string-table.js';
import type { SymbolEdit } from './types.js';
import { writeError } from './write-errors.js';

/** A new section's va range and index, to give each added symbol its st_shndx. */
export interface SectionPart {
  readonly va: bigint;
  readonly end: bigint;
  readonly index: number;
}

/** The symbol tables of the output, ready to be placed and written. */
export interface SymbolTables {
  readonly symtabIndex: number;
  readonly symtabSize: number;
  /** Undefined when the symbol names live in .shstrtab (then that table holds them). */
  readonly strtabIndex: number | undefined;
  readonly strtab: StringTableBuilder;
  /** Writes .symtab (the original entries, then the added ones) at `offset`. */
  writeSymtab(out: Uint8Array, offset: number): void;
}

/**
 * Prepares a rewritten copy of .symtab (and its .strtab) with the added symbols, or creates both
 * when the file is stripped. The symbols are appended as STB_GLOBAL: a local symbol must come
 * before every global one (sh_info), and inserting would renumber the existing globals, which
 * --emit-relocs relocation sections refer to by index. The copies go at the end of the file; the
 * original tables stay where they were, unreferenced, so the original file range is unchanged.
 */
export function prepareSymbols(elf: ElfFile, table: SectionTable, symbols: readonly SymbolEdit[], parts: readonly SectionPart[]): SymbolTables {
  const input = elf.bytes;
  const oldSymtab = elf.sections.find((s) => s.type === SHT_SYMTAB);
  const oldStrtab = oldSymtab !== undefined ? elf.sections[oldSymtab.link] : undefined;
  if (oldSymtab !== undefined && (oldStrtab === undefined || oldStrtab.type !== SHT_STRTAB)) {
    throw writeError('ELF_WRITE_UNSUPPORTED', oldSymtab.headerOffset, '.symtab does not link to a string table');
  }
  const sharedNames = oldStrtab !== undefined && oldStrtab.index === elf.header.shstrndx;
  const strtab = sharedNames ? table.names : new StringTableBuilder(oldStrtab && input.subarray(oldStrtab.offset, oldStrtab.offset + oldStrtab.size));
  const nameIndices = symbols.map((s) => strtab.add(s.name));
  const shndx = symbols.map((s) => parts.find((p) => s.va >= p.va && s.va < p.end)?.index ?? parts.find((p) => s.va === p.end)?.index ?? 0);
  if (shndx.some((i) => i >= SHN_LORESERVE)) {
    throw writeError('ELF_WRITE_UNSUPPORTED', -1, 'an added section index does not fit st_shndx');
  }
  // A new table starts with the null symbol.
  const oldSize = oldSymtab !== undefined ? oldSymtab.size : SYM_SIZE;
  const symtabSize = oldSize + symbols.length * SYM_SIZE;
  const writeSymtab = (out: Uint8Array, offset: number): void => {
    if (oldSymtab !== undefined) out.set(input.subarray(oldSymtab.offset, oldSymtab.offset + oldSymtab.size), offset);
    const view = viewOf(out);
    symbols.forEach((s, i) => {
      putSym(view, offset + oldSize + i * SYM_SIZE, {
        name: nameIndices[i]!, info: (STB_GLOBAL << 4) | (s.type === 'func' ? STT_FUNC : STT_OBJECT),
        other: STV_DEFAULT, shndx: shndx[i]!, value: s.va, size: s.size,
      });
    });
  };
  if (oldSymtab !== undefined) {
    return { symtabIndex: oldSymtab.index, symtabSize, strtabIndex: sharedNames ? undefined : oldStrtab!.index, strtab, writeSymtab };
  }
  const symtabIndex = table.add('.symtab', { type: SHT_SYMTAB, flags: 0n, va: 0n, offset: 0, size: symtabSize, link: 0, info: 1, align: 8, entsize: SYM_SIZE });
  const strtabIndex = table.add('.strtab', { type: SHT_STRTAB, flags: 0n, va: 0n, offset: 0, size: 0, link: 0, info: 0, align: 1, entsize: 0 });
  table.at(symtabIndex).link = strtabIndex;
  return { symtabIndex, symtabSize, strtabIndex, strtab, writeSymtab };
}
