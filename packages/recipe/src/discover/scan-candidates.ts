import type { ElfFile, Section } from '@libos/elfkit';
import { SHF_EXECINSTR, SHT_NOBITS } from '@libos/elfkit';
import type { SiteInstruction } from '../model.js';

/** A byte pair that may be a system call instruction, not yet confirmed by decoding. */
export interface Candidate {
  va: bigint;
  /** File offset. */
  offset: number;
  instruction: SiteInstruction;
  section: Section;
}

const NEEDLES: readonly (readonly [SiteInstruction, Buffer])[] = [
  ['syscall', Buffer.from([0x0f, 0x05])],
  ['sysenter', Buffer.from([0x0f, 0x34])],
  ['int80', Buffer.from([0xcd, 0x80])],
];

/** Executable, file-backed sections (SHF_EXECINSTR, not NOBITS, not empty). */
export function executableSections(elf: Pick<ElfFile, 'sections'>): Section[] {
  return elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0n && s.type !== SHT_NOBITS && s.size > 0);
}

/**
 * Every `0f 05`, `0f 34` and `cd 80` byte pair in the given sections, sorted by va. Buffer.indexOf
 * searches a view of the file's bytes (no copy), at memory speed; nothing is decoded here.
 */
export function scanCandidates(elf: Pick<ElfFile, 'bytes'>, sections: readonly Section[]): Candidate[] {
  const out: Candidate[] = [];
  const bytes = elf.bytes;
  for (const section of sections) {
    const end = Math.min(section.offset + section.size, bytes.length);
    if (section.offset >= end) continue;
    const view = Buffer.from(bytes.buffer, bytes.byteOffset + section.offset, end - section.offset);
    for (const [instruction, needle] of NEEDLES) {
      for (let i = view.indexOf(needle, 0); i >= 0; i = view.indexOf(needle, i + 1)) {
        out.push({ va: section.va + BigInt(i), offset: section.offset + i, instruction, section });
      }
    }
  }
  return out.sort((a, b) => (a.va < b.va ? -1 : a.va > b.va ? 1 : 0));
}
