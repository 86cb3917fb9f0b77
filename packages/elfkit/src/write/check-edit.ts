import { EHDR_SIZE, PF_X, SHT_SYMTAB_SHNDX } from '../model/constants.js';
import type { ElfFile } from '../model/types.js';
import { DEBUG_FRAME_SECTION, isPageAligned, loadSegments, pageUp, PLAN_SECTION, REL32_REACH } from './layout-rules.js';
import type { BytePatch, ElfEdit, SegmentEdit, SymbolEdit } from './types.js';
import { writeError } from './write-errors.js';

// Section names the writer may add itself: a segment by one of these names would be confused
// with them (the plan is found by its section name).
const WRITER_SECTIONS = new Set([PLAN_SECTION, DEBUG_FRAME_SECTION, '.symtab', '.strtab', '.shstrtab']);

/** A new segment after checking, with its memory size resolved. */
export interface CheckedSegment {
  readonly edit: SegmentEdit;
  readonly memsz: number;
}

/**
 * Checks the in-place patches: inside the original file, clear of the ELF header (the writer
 * rewrites it) and of each other. Returns them sorted by offset.
 */
export function checkPatches(elf: ElfFile, patches: readonly BytePatch[]): BytePatch[] {
  const length = elf.bytes.length;
  const sorted = [...patches].sort((a, b) => a.offset - b.offset);
  let previousEnd = 0;
  for (const p of sorted) {
    if (!Number.isSafeInteger(p.offset) || p.offset < 0 || p.offset + p.bytes.length > length) {
      throw writeError('ELF_PATCH_OUT_OF_FILE', p.offset, `patch of ${p.bytes.length} bytes at 0x${p.offset.toString(16)} runs past the end of the file (0x${length.toString(16)})`);
    }
    if (p.offset < EHDR_SIZE) {
      throw writeError('ELF_PATCH_PROTECTED', p.offset, 'patch touches the ELF header, which the writer rewrites');
    }
    if (p.offset < previousEnd) {
      throw writeError('ELF_PATCH_OVERLAP', p.offset, `patch at 0x${p.offset.toString(16)} overlaps the patch ending at 0x${previousEnd.toString(16)}`);
    }
    previousEnd = Math.max(previousEnd, p.offset + p.bytes.length);
  }
  return sorted;
}

/**
 * Checks the new segments against the rules planLayout follows: page-aligned, above every
 * existing PT_LOAD's va + memsz, on pages of their own, within rel32 reach of the code, with
 * names no existing section uses. Returns them sorted by va (the order of their PT_LOADs).
 */
export function checkSegments(elf: ElfFile, segments: readonly SegmentEdit[], base: bigint, codeLow: bigint): CheckedSegment[] {
  const names = new Set<string>();
  const checked: CheckedSegment[] = [];
  for (const s of segments) {
    const memsz = s.memsz ?? s.bytes.length;
    if (s.name.length === 0 || names.has(s.name) || WRITER_SECTIONS.has(s.name)) {
      throw writeError('ELF_SEGMENT_BAD', -1, `segment name ${JSON.stringify(s.name)} is empty, used twice, or one the writer adds itself`, s.va);
    }
    names.add(s.name);
    const existing = elf.section(s.name);
    if (existing !== undefined) {
      throw writeError('ELF_SECTION_EXISTS', existing.headerOffset, `the file already has a section named ${s.name}`, s.va);
    }
    if (!Number.isSafeInteger(memsz) || memsz < s.bytes.length || memsz <= 0) {
      throw writeError('ELF_SEGMENT_BAD', -1, `segment ${s.name}: memsz ${memsz} must be positive and at least its ${s.bytes.length} bytes`, s.va);
    }
    if (!isPageAligned(s.va)) {
      throw writeError('ELF_SEGMENT_MISALIGNED', -1, `segment ${s.name} at 0x${s.va.toString(16)} is not page aligned (use planLayout)`, s.va);
    }
    if (s.va < base) {
      const hit = loadSegments(elf).find((l) => s.va < l.va + BigInt(l.memsz) && l.va < s.va + BigInt(memsz));
      throw writeError('ELF_SEGMENT_OVERLAP', hit?.headerOffset ?? -1, `segment ${s.name} at 0x${s.va.toString(16)} lies below the end of the existing segments (0x${base.toString(16)}; use planLayout)`, s.va);
    }
    if (s.va + BigInt(memsz) - codeLow > REL32_REACH) {
      throw writeError('ELF_SEGMENT_OUT_OF_RANGE', -1, `segment ${s.name} ends beyond rel32 reach of the code at 0x${codeLow.toString(16)}`, s.va);
    }
    checked.push({ edit: s, memsz });
  }
  checked.sort((a, b) => (a.edit.va < b.edit.va ? -1 : a.edit.va > b.edit.va ? 1 : 0));
  for (let i = 1; i < checked.length; i++) {
    const prev = checked[i - 1]!;
    const cur = checked[i]!;
    if (cur.edit.va < pageUp(prev.edit.va + BigInt(prev.memsz))) {
      throw writeError('ELF_SEGMENT_OVERLAP', -1, `segments ${prev.edit.name} and ${cur.edit.name} share a page`, cur.edit.va);
    }
  }
  return checked;
}

/** The new segment holding [va, va + size), or undefined. */
export function segmentHolding(segments: readonly CheckedSegment[], va: bigint, size: number): CheckedSegment | undefined {
  return segments.find((s) => va >= s.edit.va && va + BigInt(size) <= s.edit.va + BigInt(s.memsz));
}

/** Checks that every added symbol names bytes inside one new segment. */
export function checkSymbols(elf: ElfFile, symbols: readonly SymbolEdit[], segments: readonly CheckedSegment[]): void {
  for (const sym of symbols) {
    if (sym.name.length === 0 || !Number.isSafeInteger(sym.size) || sym.size < 0 || segmentHolding(segments, sym.va, Math.max(sym.size, 1)) === undefined) {
      throw writeError('ELF_SYMBOL_OUTSIDE', -1, `symbol ${JSON.stringify(sym.name)} at 0x${sym.va.toString(16)} (+${sym.size}) is not inside a new segment`, sym.va);
    }
  }
  // An SHT_SYMTAB_SHNDX table has one entry per symbol: appending symbols would need it grown too.
  const shndx = elf.sections.find((s) => s.type === SHT_SYMTAB_SHNDX);
  if (symbols.length > 0 && shndx !== undefined) {
    throw writeError('ELF_WRITE_UNSUPPORTED', shndx.headerOffset, 'adding symbols to a file with SHT_SYMTAB_SHNDX is not supported');
  }
}

/** Checks the optional new entry point and .debug_frame against the file. */
export function checkEntryAndDebugFrame(elf: ElfFile, edit: ElfEdit, segments: readonly CheckedSegment[]): void {
  if (edit.entry !== undefined) {
    const entry = edit.entry;
    const inOld = loadSegments(elf).some((l) => (l.flags & PF_X) !== 0 && entry >= l.va && entry < l.va + BigInt(l.filesz));
    const inNew = segments.some((s) => s.edit.flags === 'rx' && entry >= s.edit.va && entry < s.edit.va + BigInt(s.edit.bytes.length));
    if (!inOld && !inNew) throw writeError('ELF_BAD_ENTRY', 24, `entry 0x${entry.toString(16)} is not inside executable file bytes`, entry);
  }
  if (edit.debugFrame !== undefined) {
    const existing = elf.section(DEBUG_FRAME_SECTION);
    if (existing !== undefined) {
      throw writeError('ELF_SECTION_EXISTS', existing.headerOffset, `the file already has ${DEBUG_FRAME_SECTION}; merging CFI into it is not supported`);
    }
  }
}
