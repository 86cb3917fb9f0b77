import { ElfError } from '../errors.js';
import { PHDR_SIZE, PT_LOAD } from '../model/constants.js';
import type { ElfHeader, Segment } from '../model/types.js';
import type { Cursor } from './cursor.js';

/**
 * Reads the program header table. A segment whose file bytes lie outside the file, or a PT_LOAD
 * with memsz < filesz, is refused so that address translation can trust every PT_LOAD.
 */
export function readSegments(c: Cursor, h: ElfHeader): Segment[] {
  const segments: Segment[] = new Array(h.phnum);
  for (let i = 0; i < h.phnum; i++) {
    const at = h.phoff + i * PHDR_SIZE;
    const type = c.u32(at);
    const offset = c.u64n(at + 8, 'ELF_BAD_OFFSET', 'p_offset');
    const filesz = c.u64n(at + 32, 'ELF_BAD_OFFSET', 'p_filesz');
    const memsz = c.u64n(at + 40, 'ELF_BAD_SEGMENT', 'p_memsz');
    if (offset > c.length || filesz > c.length - offset) {
      throw new ElfError('ELF_BAD_OFFSET', at + 8, `segment ${i}: bytes [0x${offset.toString(16)}, +0x${filesz.toString(16)}) lie outside the file`);
    }
    const va = c.u64(at + 16);
    if (type === PT_LOAD) {
      if (memsz < filesz) throw new ElfError('ELF_BAD_SEGMENT', at + 40, `PT_LOAD ${i}: p_memsz 0x${memsz.toString(16)} < p_filesz 0x${filesz.toString(16)}`);
      if (va + BigInt(memsz) > 0xffffffffffffffffn) throw new ElfError('ELF_BAD_SEGMENT', at + 16, `PT_LOAD ${i}: wraps around the address space`);
    }
    segments[i] = {
      index: i,
      type,
      flags: c.u32(at + 4),
      offset,
      va,
      pa: c.u64(at + 24),
      filesz,
      memsz,
      align: c.u64n(at + 48, 'ELF_BAD_SEGMENT', 'p_align'),
      headerOffset: at,
    };
  }
  return segments;
}
