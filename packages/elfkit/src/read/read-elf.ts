import type { ElfFile } from '../model/types.js';
import { ElfFileReader } from './elf-file.js';

/**
 * Parses an ELF64 little-endian x86-64 file. Header, sections and segments are checked now;
 * symbols, relocations, notes and the rest are read on first access. Throws {@link ElfError}.
 *
 * @example
 * const elf = readElf(readFileSync('/bin/ls'));
 * elf.section('.text')?.size;
 */
export function readElf(bytes: Uint8Array): ElfFile {
  return new ElfFileReader(bytes);
}
