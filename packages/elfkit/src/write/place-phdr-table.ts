import { PHDR_SIZE } from '../model/constants.js';
import type { ElfFile } from '../model/types.js';
import type { CheckedSegment } from './check-edit.js';
import { alignUp } from '../align.js';
import { congruentOffset, loadSegments, pageUp } from './layout-rules.js';
import { writeError } from './write-errors.js';

/** Where the program header table of the output lives. */
export interface PhdrTablePlacement {
  /** False when the edit adds no segment: the table stays where it is. */
  readonly moved: boolean;
  readonly offset: number;
  /** Its va inside its own new PT_LOAD (meaningful when moved). */
  readonly va: bigint;
  /** Entries: the original ones, one per new segment, and one for the table's own PT_LOAD. */
  readonly count: number;
}

// The kernel refuses a program header table larger than 64 KiB (load_elf_phdrs).
const KERNEL_PHDR_LIMIT = 0x10000;
// How much file padding we accept to give the table the first PT_LOAD's va - offset delta.
const OLD_KERNEL_PADDING_LIMIT = 0x100000;

/**
 * Places the program header table of the output.
 *
 * New PT_LOADs need new entries, and the table is almost always followed by .interp or .note
 * data, so it cannot grow in place: it moves to the end of the file, into a read-only PT_LOAD of
 * its own above the new segments. It must be mapped: ld.so computes a PIE's load bias as
 * AT_PHDR - PT_PHDR.p_vaddr, and static glibc finds PT_TLS (and dl_iterate_phdr its unwind
 * tables) through AT_PHDR. Kernels since 5.18 set AT_PHDR from the PT_LOAD whose file range
 * holds e_phoff; older kernels from the first PT_LOAD's va - offset delta plus e_phoff. When the
 * padding needed is small, the table is placed so that both agree (va - offset equals the first
 * PT_LOAD's delta); otherwise, with a huge .bss, only the newer rule holds.
 */
export function placePhdrTable(elf: ElfFile, segments: readonly CheckedSegment[], fileEnd: number): PhdrTablePlacement {
  if (segments.length === 0) {
    return { moved: false, offset: elf.header.phoff, va: 0n, count: elf.header.phnum };
  }
  const count = elf.header.phnum + segments.length + 1;
  if (count * PHDR_SIZE > KERNEL_PHDR_LIMIT) {
    throw writeError('ELF_WRITE_UNSUPPORTED', 56, `${count} program headers exceed the kernel's 64 KiB limit`);
  }
  let top = 0n;
  for (const s of segments) {
    const end = s.edit.va + BigInt(s.memsz);
    if (end > top) top = end;
  }
  // Its own pages: a PT_LOAD sharing a page with the segment before it would be mapped over it.
  top = pageUp(top);
  const from = alignUp(fileEnd, 8);
  const first = loadSegments(elf)[0]!;
  const delta = first.va - BigInt(first.offset);
  const wanted = top - delta;
  if (wanted >= 0n && wanted - BigInt(from) <= BigInt(OLD_KERNEL_PADDING_LIMIT)) {
    const offset = Math.max(from, Number(wanted));
    return { moved: true, offset, va: BigInt(offset) + delta, count };
  }
  return { moved: true, offset: congruentOffset(from, top), va: top, count };
}
