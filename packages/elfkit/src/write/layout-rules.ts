import { PF_X, PT_LOAD } from '../model/constants.js';
import type { ElfFile, Segment } from '../model/types.js';
import type { SegmentFlags } from './types.js';
import { writeError } from './write-errors.js';

/**
 * The page size every new PT_LOAD is aligned to. x86-64 Linux maps 4 KiB pages; a larger
 * p_align in the original loads does not matter for segments placed above all of them.
 */
export const PAGE = 0x1000;
const PAGE_N = BigInt(PAGE);

/** Farthest a rel32 (jmp, call, rip-relative operand) reaches: 2^31 - 1 bytes. */
export const REL32_REACH = 0x7fffffffn;

/** The sections the writer adds or owns, by name. */
export const PLAN_SECTION = '.libos.plan';
export const DEBUG_FRAME_SECTION = '.debug_frame';

/** `va` rounded up to the next page boundary. */
export function pageUp(va: bigint): bigint {
  return ((va + PAGE_N - 1n) / PAGE_N) * PAGE_N;
}

/** True when `va` is page aligned. */
export function isPageAligned(va: bigint): boolean {
  return va % PAGE_N === 0n;
}

/**
 * The smallest file offset >= `from` that is congruent to `va` modulo the page size: the kernel
 * and ld.so map a PT_LOAD with mmap, which needs offset % page == vaddr % page.
 */
export function congruentOffset(from: number, va: bigint): number {
  const want = Number(va % PAGE_N);
  const have = from % PAGE;
  return from + ((want - have + PAGE) % PAGE);
}

/** The p_flags bits of a segment kind. */
export function segmentFlagBits(flags: SegmentFlags): number {
  return flags === 'rx' ? 5 : flags === 'rw' ? 6 : 4;
}

/** The file's PT_LOAD segments, in table order. */
export function loadSegments(elf: ElfFile): Segment[] {
  return elf.segments.filter((s) => s.type === PT_LOAD);
}

/**
 * Checks that new segments can be added at all and returns the facts the layout rests on: the
 * first free page above every PT_LOAD's va + memsz (memsz, not filesz: the zero-filled tail of
 * .bss is mapped too, and a segment placed over it faults on the first .bss write), and the
 * lowest executable va (the code a trampoline's rel32 must reach back to).
 */
export function layoutBase(elf: ElfFile): { base: bigint; codeLow: bigint } {
  if (elf.kind === 'relocatable') {
    throw writeError('ELF_WRITE_UNSUPPORTED', 16, 'a relocatable object has no segments to extend: rewrite the linked file');
  }
  const loads = loadSegments(elf);
  const first = loads[0];
  if (first === undefined) throw writeError('ELF_WRITE_UNSUPPORTED', 32, 'the file has no PT_LOAD segment');
  if (elf.section(PLAN_SECTION) !== undefined) {
    throw writeError('ELF_ALREADY_REWRITTEN', elf.section(PLAN_SECTION)!.headerOffset, `the file already holds ${PLAN_SECTION}: revert it and rewrite the original`);
  }
  let top = 0n;
  let codeLow: bigint | undefined;
  for (const s of loads) {
    const end = s.va + BigInt(s.memsz);
    if (end > top) top = end;
    if ((s.flags & PF_X) !== 0 && (codeLow === undefined || s.va < codeLow)) codeLow = s.va;
  }
  return { base: pageUp(top), codeLow: codeLow ?? first.va };
}
