import type { ElfFile } from '../model/types.js';
import { layoutBase, pageUp, REL32_REACH } from './layout-rules.js';
import type { LayoutRequest, SegmentPlacement } from './types.js';
import { writeError } from './write-errors.js';

/**
 * Decides where new loadable segments go, before any code is encoded for them: in request order,
 * each on its own pages, starting at the first page above the highest PT_LOAD's va + memsz.
 * The same file and requests always give the same placements, and {@link writeElf} accepts
 * exactly such placements (with bytes no larger than requested).
 *
 * Throws ElfError ELF_LAYOUT_BAD_REQUEST for a malformed request and ELF_LAYOUT_OUT_OF_RANGE when
 * the segments would end more than 2 GiB above the lowest code (a rel32 could not reach them).
 */
export function planLayout(elf: ElfFile, requests: readonly LayoutRequest[]): SegmentPlacement[] {
  const { base, codeLow } = layoutBase(elf);
  const names = new Set<string>();
  const placements: SegmentPlacement[] = [];
  let va = base;
  for (const r of requests) {
    if (r.name.length === 0 || names.has(r.name)) {
      throw writeError('ELF_LAYOUT_BAD_REQUEST', -1, `segment name ${JSON.stringify(r.name)} is empty or used twice`);
    }
    if (!Number.isSafeInteger(r.size) || r.size <= 0) {
      throw writeError('ELF_LAYOUT_BAD_REQUEST', -1, `segment ${r.name}: size ${r.size} is not a positive integer`);
    }
    names.add(r.name);
    const end = va + BigInt(r.size);
    if (end - codeLow > REL32_REACH) {
      throw writeError('ELF_LAYOUT_OUT_OF_RANGE', -1, `segment ${r.name} would end at 0x${end.toString(16)}, beyond rel32 reach of the code at 0x${codeLow.toString(16)}`, va);
    }
    placements.push({ name: r.name, va, flags: r.flags, size: r.size });
    // Separate pages per segment: different protections cannot share a page, and mutable data
    // on a page with running code is treated as self-modifying code by the CPU.
    va = pageUp(end);
  }
  return placements;
}
