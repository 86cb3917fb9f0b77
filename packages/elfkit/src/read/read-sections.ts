import { ElfError } from '../errors.js';
import { SHDR_SIZE, SHT_NOBITS, SHT_NULL, SHT_STRTAB } from '../model/constants.js';
import type { ElfHeader, Section } from '../model/types.js';
import { StringTable, type Cursor } from './cursor.js';

/**
 * Reads the section header table and names every section through e_shstrndx. A section whose
 * file bytes lie outside the file is refused here, so later readers can trust offset + size.
 */
export function readSections(c: Cursor, h: ElfHeader): Section[] {
  const n = h.shnum;
  const raw: Omit<Section, 'name'>[] = new Array(n);
  const nameIndex: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const at = h.shoff + i * SHDR_SIZE;
    const type = c.u32(at + 4);
    const offset = c.u64n(at + 24, 'ELF_BAD_OFFSET', 'sh_offset');
    const size = c.u64n(at + 32, 'ELF_BAD_OFFSET', 'sh_size');
    // Section 0 reuses sh_size/sh_link for extended numbering: it has no bytes of its own.
    if (i !== 0 && type !== SHT_NOBITS && type !== SHT_NULL && (offset > c.length || size > c.length - offset)) {
      throw new ElfError('ELF_BAD_OFFSET', at + 24, `section ${i}: bytes [0x${offset.toString(16)}, +0x${size.toString(16)}) lie outside the file`);
    }
    const align = c.u64n(at + 48, 'ELF_BAD_OFFSET', 'sh_addralign');
    const entsize = c.u64n(at + 56, 'ELF_BAD_ENTSIZE', 'sh_entsize');
    nameIndex[i] = c.u32(at);
    raw[i] = {
      index: i,
      type,
      flags: c.u64(at + 8),
      va: c.u64(at + 16),
      offset,
      size,
      link: c.u32(at + 40),
      info: c.u32(at + 44),
      align,
      entsize,
      headerOffset: at,
    };
  }
  let names: StringTable | undefined;
  if (h.shstrndx !== 0) {
    const s = raw[h.shstrndx]!;
    if (s.type !== SHT_STRTAB) {
      throw new ElfError('ELF_BAD_INDEX', 62, `e_shstrndx ${h.shstrndx} names a section of type ${s.type}, not a string table`);
    }
    names = new StringTable(c, s.offset, s.size);
  }
  const sections: Section[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = raw[i]!;
    const ni = nameIndex[i]!;
    // Without a section name table every name is empty (as readelf shows them), unless one is asked for.
    const name = names === undefined ? (ni === 0 ? '' : badName(r.headerOffset, ni)) : names.get(ni, r.headerOffset);
    sections[i] = { ...r, name };
  }
  return sections;
}

function badName(at: number, index: number): never {
  throw new ElfError('ELF_BAD_STRING', at, `section name index ${index} but the file has no section name table`);
}
