import { ElfError } from '../errors.js';
import {
  EHDR_SIZE, ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_DYN, ET_EXEC, ET_REL, EV_CURRENT, PHDR_SIZE,
  PN_XNUM, SHDR_SIZE, SHN_UNDEF, SHN_XINDEX,
} from '../model/constants.js';
import type { ElfHeader } from '../model/types.js';
import type { Cursor } from './cursor.js';

/**
 * Reads and checks the ELF header: magic, ELF64, little-endian, x86-64, and that the program and
 * section header tables lie inside the file without overlapping the ELF header.
 */
export function readHeader(c: Cursor): ElfHeader {
  if (c.length < 4 || c.bytes[0] !== 0x7f || c.bytes[1] !== 0x45 || c.bytes[2] !== 0x4c || c.bytes[3] !== 0x46) {
    throw new ElfError('ELF_BAD_MAGIC', 0, 'not an ELF file (no \\x7fELF magic)');
  }
  if (c.length < EHDR_SIZE) throw new ElfError('ELF_TRUNCATED', c.length, `file ends at ${c.length}, inside the 64-byte ELF header`);
  const cls = c.u8(4);
  if (cls !== ELFCLASS64) throw new ElfError('ELF_BAD_CLASS', 4, `EI_CLASS ${cls}: only ELF64 is supported`);
  const data = c.u8(5);
  if (data !== ELFDATA2LSB) throw new ElfError('ELF_BAD_ENDIAN', 5, `EI_DATA ${data}: only little-endian is supported`);
  const identVersion = c.u8(6);
  if (identVersion !== EV_CURRENT) throw new ElfError('ELF_BAD_VERSION', 6, `EI_VERSION ${identVersion}`);
  const type = c.u16(16);
  if (type !== ET_REL && type !== ET_EXEC && type !== ET_DYN) {
    throw new ElfError('ELF_BAD_TYPE', 16, `e_type ${type}: only relocatable, executable and shared files are supported`);
  }
  const machine = c.u16(18);
  if (machine !== EM_X86_64) throw new ElfError('ELF_BAD_MACHINE', 18, `e_machine ${machine}: only x86-64 (62) is supported`);
  const version = c.u32(20);
  const entry = c.u64(24);
  const phoff = c.u64n(32, 'ELF_BAD_OFFSET', 'e_phoff');
  const shoff = c.u64n(40, 'ELF_BAD_OFFSET', 'e_shoff');
  const flags = c.u32(48);
  const ehsize = c.u16(52);
  const phentsize = c.u16(54);
  let phnum = c.u16(56);
  const shentsize = c.u16(58);
  let shnum = c.u16(60);
  let shstrndx = c.u16(62);

  if (shoff !== 0) {
    if (shentsize !== SHDR_SIZE) throw new ElfError('ELF_BAD_ENTSIZE', 58, `e_shentsize ${shentsize}, expected ${SHDR_SIZE}`);
    checkTable(c, shoff, 40, 'section header table', 1);
    // Section 0 holds the real counts when they do not fit the 16-bit fields.
    const real = c.u64n(shoff + 32, 'ELF_BAD_COUNT', 'section 0 sh_size (extended section count)');
    if (shnum === 0) shnum = real;
    if (shstrndx === SHN_XINDEX) shstrndx = c.u32(shoff + 40);
    if (phnum === PN_XNUM) phnum = c.u32(shoff + 44);
    if (shnum === 0) throw new ElfError('ELF_BAD_COUNT', 60, 'section header table present but holds no sections');
    checkTable(c, shoff, 40, 'section header table', shnum);
    if (shstrndx !== SHN_UNDEF && shstrndx >= shnum) {
      throw new ElfError('ELF_BAD_INDEX', 62, `e_shstrndx ${shstrndx} is not a section (${shnum} sections)`);
    }
  } else {
    shnum = 0;
    shstrndx = 0;
  }
  if (phnum !== 0) {
    if (phentsize !== PHDR_SIZE) throw new ElfError('ELF_BAD_ENTSIZE', 54, `e_phentsize ${phentsize}, expected ${PHDR_SIZE}`);
    checkTable(c, phoff, 32, 'program header table', phnum, PHDR_SIZE);
    // The two header tables sharing bytes is no file a linker writes, and a writer that trusts
    // either would corrupt the other.
    if (shnum !== 0 && phoff < shoff + shnum * SHDR_SIZE && shoff < phoff + phnum * PHDR_SIZE) {
      throw new ElfError('ELF_BAD_OFFSET', 32, `program header table at 0x${phoff.toString(16)} overlaps the section header table at 0x${shoff.toString(16)}`);
    }
  }
  return { osabi: c.u8(7), type, machine, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum, shentsize, shnum, shstrndx };
}

// A header table must start past the ELF header and end inside the file. A count that could not
// fit in the file at any offset is absurd (ELF_BAD_COUNT); one that merely runs off the end is a
// truncation.
function checkTable(c: Cursor, offset: number, field: number, what: string, count: number, entsize = SHDR_SIZE): void {
  if (offset < EHDR_SIZE) throw new ElfError('ELF_BAD_OFFSET', field, `${what} at 0x${offset.toString(16)} overlaps the ELF header`);
  if (offset >= c.length) throw new ElfError('ELF_BAD_OFFSET', field, `${what} at 0x${offset.toString(16)} starts past the end of the file`);
  if (count * entsize > c.length) throw new ElfError('ELF_BAD_COUNT', offset, `${what}: ${count} entries cannot fit in a ${c.length}-byte file`);
  if (offset + count * entsize > c.length) throw new ElfError('ELF_TRUNCATED', offset, `${what}: ${count} entries run past the end of the file`);
}
