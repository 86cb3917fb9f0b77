import { SHT_NULL, SHT_STRTAB } from '../model/constants.js';
import type { ElfFile } from '../model/types.js';
import { viewOf, type ShdrFields } from './elf-structs.js';
import { StringTableBuilder } from './string-table.js';

/** Fields of a section the writer adds, before its name index is known. */
export type NewSection = Omit<ShdrFields, 'name'>;

/**
 * The output's section header table while it is being built: the original headers copied (their
 * sh_name indices stay valid because .shstrtab only grows), then the added ones.
 */
export class SectionTable {
  readonly entries: ShdrFields[];
  /** The section name table, the original's bytes plus the added names. */
  readonly names: StringTableBuilder;
  private readonly hadNameTable: boolean;
  private nameTable: number;

  constructor(elf: ElfFile) {
    const input = viewOf(elf.bytes);
    this.entries = elf.sections.map((s) => ({
      name: input.getUint32(s.headerOffset, true),
      type: s.type, flags: s.flags, va: s.va, offset: s.offset, size: s.size,
      link: s.link, info: s.info, align: s.align, entsize: s.entsize,
    }));
    // A file without section headers gets a table starting with the null section.
    if (this.entries.length === 0) {
      this.entries.push({ name: 0, type: SHT_NULL, flags: 0n, va: 0n, offset: 0, size: 0, link: 0, info: 0, align: 0, entsize: 0 });
    }
    const old = elf.header.shstrndx !== 0 ? elf.sections[elf.header.shstrndx] : undefined;
    this.names = new StringTableBuilder(old && elf.bytes.subarray(old.offset, old.offset + old.size));
    this.hadNameTable = old !== undefined;
    this.nameTable = elf.header.shstrndx;
  }

  /** Appends a section and returns its index. */
  add(name: string, fields: NewSection): number {
    this.entries.push({ name: this.names.add(name), ...fields });
    return this.entries.length - 1;
  }

  /** The entry at `index`. */
  at(index: number): ShdrFields {
    const e = this.entries[index];
    if (e === undefined) throw new Error(`internal: no section ${index}`);
    return e;
  }

  /**
   * The index of .shstrtab, adding one when the file had none. Call once every other section
   * has been added: its size is final only then.
   */
  nameTableIndex(): number {
    if (!this.hadNameTable && this.nameTable === 0) {
      this.nameTable = this.add('.shstrtab', { type: SHT_STRTAB, flags: 0n, va: 0n, offset: 0, size: 0, link: 0, info: 0, align: 1, entsize: 0 });
    }
    return this.nameTable;
  }
}
