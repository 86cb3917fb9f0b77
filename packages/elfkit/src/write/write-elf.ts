import {
  EHDR_SIZE, PF_R, PHDR_SIZE, PN_XNUM, PT_LOAD, PT_PHDR, SHDR_SIZE, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE,
  SHN_LORESERVE, SHN_XINDEX, SHT_NOBITS, SHT_PROGBITS,
} from '../model/constants.js';
import { alignUp } from '../align.js';
import type { ElfFile } from '../model/types.js';
import { prepareSymbols, type SectionPart } from './add-symbols.js';
import { checkEntryAndDebugFrame, checkPatches, checkSegments, checkSymbols, type CheckedSegment } from './check-edit.js';
import { putPhdr, putShdr, viewOf } from './elf-structs.js';
import { congruentOffset, DEBUG_FRAME_SECTION, layoutBase, PAGE, PLAN_SECTION, segmentFlagBits } from './layout-rules.js';
import { placePhdrTable } from './place-phdr-table.js';
import { chunkSizeFor, DIGEST_SIZE, fillDigests, planRecordFixedSize, putPlanRecord, type OriginalRange } from './plan-record.js';
import { SectionTable } from './section-table.js';
import type { ElfEdit } from './types.js';

/**
 * Applies an edit and returns the new file's bytes; `elf.bytes` is copied once and never changed.
 *
 * The output is the original file with the in-place patches and a new ELF header, followed by
 * the new segments (each at a file offset congruent to its va modulo the page size), the moved
 * program header table in a read-only PT_LOAD of its own, and then the non-alloc data: the
 * optional .debug_frame, a rewritten copy of .symtab/.strtab with the added symbols, a copy of
 * .shstrtab with the new names, the .libos.plan record, and the new section header table. See
 * src/write/README.md for why each piece goes where it goes.
 *
 * Throws ElfError with a writer code (ELF_PATCH_*, ELF_SEGMENT_*, ...) for an edit it cannot
 * apply; the same file and edit always give the same bytes.
 */
export function writeElf(elf: ElfFile, edit: ElfEdit): Uint8Array {
  const { base, codeLow } = layoutBase(elf);
  const input = elf.bytes;
  const patches = checkPatches(elf, edit.patches).filter((p) => p.bytes.length > 0);
  const segments = checkSegments(elf, edit.segments, base, codeLow);
  const symbols = edit.symbols ?? [];
  checkSymbols(elf, symbols, segments);
  checkEntryAndDebugFrame(elf, edit, segments);
  const metadata = edit.metadata ?? new Uint8Array(0);

  // 1. Loadable data: the new segments, then the program header table's own PT_LOAD.
  let at = input.length;
  const segmentOffsets = segments.map((s) => {
    const offset = congruentOffset(at, s.edit.va);
    at = offset + s.edit.bytes.length;
    return offset;
  });
  const phdr = placePhdrTable(elf, segments, at);
  if (phdr.moved) at = phdr.offset + phdr.count * PHDR_SIZE;

  // 2. Section headers, every name first: .shstrtab's size is final only once all are in.
  //    Each new segment gets a PROGBITS section for its file bytes and a NOBITS one for a
  //    zero-filled tail, so that objdump disassembles .libos.text and gdb finds its symbols.
  const table = new SectionTable(elf);
  const parts: SectionPart[] = [];
  segments.forEach((s, i) => {
    const offset = segmentOffsets[i]!;
    const fileSize = s.edit.bytes.length;
    const flags = SHF_ALLOC | (s.edit.flags === 'rx' ? SHF_EXECINSTR : s.edit.flags === 'rw' ? SHF_WRITE : 0n);
    if (fileSize > 0) {
      const index = table.add(s.edit.name, { type: SHT_PROGBITS, flags, va: s.edit.va, offset, size: fileSize, link: 0, info: 0, align: s.edit.flags === 'rx' ? 16 : 8, entsize: 0 });
      parts.push({ va: s.edit.va, end: s.edit.va + BigInt(fileSize), index });
    }
    if (s.memsz > fileSize) {
      const va = s.edit.va + BigInt(fileSize);
      const name = fileSize > 0 ? `${s.edit.name}.bss` : s.edit.name;
      const index = table.add(name, { type: SHT_NOBITS, flags, va, offset: offset + fileSize, size: s.memsz - fileSize, link: 0, info: 0, align: 1, entsize: 0 });
      parts.push({ va, end: s.edit.va + BigInt(s.memsz), index });
    }
  });
  const nonAlloc = { flags: 0n, va: 0n, offset: 0, size: 0, link: 0, info: 0, entsize: 0 };
  const debugFrameIndex = edit.debugFrame !== undefined ? table.add(DEBUG_FRAME_SECTION, { ...nonAlloc, type: SHT_PROGBITS, align: 8 }) : undefined;
  const symbolTables = symbols.length > 0 ? prepareSymbols(elf, table, symbols, parts) : undefined;
  const planIndex = table.add(PLAN_SECTION, { ...nonAlloc, type: SHT_PROGBITS, align: 8 });
  const shstrndx = table.nameTableIndex();
  const shnum = table.entries.length;

  // 3. Non-alloc data, in order after the loadable data.
  const place = (index: number, size: number, align: number): number => {
    const offset = alignUp(at, align);
    at = offset + size;
    Object.assign(table.at(index), { offset, size });
    return offset;
  };
  const debugFrameOffset = debugFrameIndex !== undefined ? place(debugFrameIndex, edit.debugFrame!.length, 8) : 0;
  const symtabOffset = symbolTables !== undefined ? place(symbolTables.symtabIndex, symbolTables.symtabSize, 8) : 0;
  const strtabOffset = symbolTables?.strtabIndex !== undefined ? place(symbolTables.strtabIndex, symbolTables.strtab.size, 1) : 0;
  const shstrtabOffset = place(shstrndx, table.names.size, 1);

  // The plan record holds one digest per chunk of the output (4 KiB, more for a large file), and
  // its size decides how many chunks there are: grow the count until it covers the whole file.
  const ranges: OriginalRange[] = [
    { offset: 0, original: input.subarray(0, EHDR_SIZE) },
    ...patches.map((p) => ({ offset: p.offset, original: input.subarray(p.offset, p.offset + p.bytes.length) })),
  ];
  const planFixed = planRecordFixedSize(ranges, metadata.length);
  const planOffset = alignUp(at, 8);
  const totalFor = (digests: number): number => planOffset + planFixed + digests * DIGEST_SIZE + shnum * SHDR_SIZE;
  const chunkSize = chunkSizeFor(totalFor(0));
  let digestCount = 0;
  while (Math.ceil(totalFor(digestCount) / chunkSize) > digestCount) digestCount = Math.ceil(totalFor(digestCount) / chunkSize);
  const total = totalFor(digestCount);
  place(planIndex, planFixed + digestCount * DIGEST_SIZE, 8);
  const shoff = alignUp(at, 8);

  // 4. Write. The input is copied exactly once, into the front of the output.
  const out = new Uint8Array(total);
  out.set(input);
  const view = viewOf(out);
  for (const p of patches) out.set(p.bytes, p.offset);
  segments.forEach((s, i) => out.set(s.edit.bytes, segmentOffsets[i]!));
  if (phdr.moved) writePhdrTable(elf, out, segments, segmentOffsets, phdr.offset, phdr.va, phdr.count);
  if (edit.debugFrame !== undefined) out.set(edit.debugFrame, debugFrameOffset);
  if (symbolTables !== undefined) {
    symbolTables.writeSymtab(out, symtabOffset);
    if (symbolTables.strtabIndex !== undefined) symbolTables.strtab.writeTo(out, strtabOffset);
  }
  table.names.writeTo(out, shstrtabOffset);
  const digestOffset = putPlanRecord(out, table.at(planIndex).offset, ranges, metadata, input.length, total, digestCount, chunkSize);

  // Extended numbering (gABI): counts and the name-table index that do not fit the 16-bit
  // header fields live in section 0.
  const zero = table.at(0);
  if (phdr.count >= PN_XNUM) zero.info = phdr.count;
  if (shnum >= SHN_LORESERVE) zero.size = shnum;
  if (shstrndx >= SHN_LORESERVE) zero.link = shstrndx;
  table.entries.forEach((s, i) => putShdr(view, shoff + i * SHDR_SIZE, s));

  if (edit.entry !== undefined) view.setBigUint64(24, edit.entry, true);
  view.setBigUint64(32, BigInt(phdr.offset), true);
  view.setBigUint64(40, BigInt(shoff), true);
  view.setUint16(54, PHDR_SIZE, true);
  view.setUint16(56, phdr.count >= PN_XNUM ? PN_XNUM : phdr.count, true);
  view.setUint16(58, SHDR_SIZE, true);
  view.setUint16(60, shnum >= SHN_LORESERVE ? 0 : shnum, true);
  view.setUint16(62, shstrndx >= SHN_LORESERVE ? SHN_XINDEX : shstrndx, true);

  // Last: the digests cover every other byte of the output.
  fillDigests(out, digestOffset, digestCount, chunkSize);
  return out;
}

/**
 * Writes the output's program header table: the original entries in order with PT_PHDR
 * describing the moved table, and the new PT_LOADs inserted right after the last original
 * PT_LOAD. PT_LOADs must stay sorted by va: the kernel tolerates disorder, but ld.so (running
 * `ld.so ./prog`, or loading a shared library) maps the range from the first to the last PT_LOAD
 * and fails with "failed to map segment" otherwise. PT_PHDR keeps its place before every
 * PT_LOAD, as ld.so reads it first to compute the load bias.
 */
function writePhdrTable(
  elf: ElfFile, out: Uint8Array, segments: readonly CheckedSegment[], segmentOffsets: readonly number[],
  offset: number, va: bigint, count: number,
): void {
  const view = viewOf(out);
  const size = count * PHDR_SIZE;
  const lastLoad = elf.segments.reduce((last, s, i) => (s.type === PT_LOAD ? i : last), -1);
  let at = offset;
  const copy = (i: number): void => {
    const s = elf.segments[i]!;
    out.set(elf.bytes.subarray(s.headerOffset, s.headerOffset + PHDR_SIZE), at);
    if (s.type === PT_PHDR) putPhdr(view, at, { type: PT_PHDR, flags: s.flags, offset, va, pa: va, filesz: size, memsz: size, align: 8 });
    at += PHDR_SIZE;
  };
  for (let i = 0; i <= lastLoad; i++) copy(i);
  segments.forEach((s, i) => {
    putPhdr(view, at, { type: PT_LOAD, flags: segmentFlagBits(s.edit.flags), offset: segmentOffsets[i]!, va: s.edit.va, pa: s.edit.va, filesz: s.edit.bytes.length, memsz: s.memsz, align: PAGE });
    at += PHDR_SIZE;
  });
  // The table's own PT_LOAD, so that AT_PHDR points at mapped memory.
  putPhdr(view, at, { type: PT_LOAD, flags: PF_R, offset, va, pa: va, filesz: size, memsz: size, align: PAGE });
  at += PHDR_SIZE;
  for (let i = lastLoad + 1; i < elf.segments.length; i++) copy(i);
}
