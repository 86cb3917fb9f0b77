import { alignUp } from '../align.js';
import { ElfError } from '../errors.js';
import { PT_NOTE, SHT_NOTE } from '../model/constants.js';
import type { Note, Section, Segment } from '../model/types.js';
import type { Cursor } from './cursor.js';

/**
 * Reads the notes of every SHT_NOTE section, or of every PT_NOTE segment when the file has no
 * sections. Each note advances the walk by at least 12 bytes, so the walk ends.
 */
export function readNotes(c: Cursor, sections: readonly Section[], segments: readonly Segment[]): Note[] {
  const out: Note[] = [];
  const noteSections = sections.filter((s) => s.type === SHT_NOTE);
  if (noteSections.length > 0 || sections.length > 0) {
    for (const s of noteSections) walk(c, s.offset, s.size, s.align, out, s.index);
  } else {
    for (const p of segments) if (p.type === PT_NOTE) walk(c, p.offset, p.filesz, p.align, out, undefined);
  }
  return out;
}

function walk(c: Cursor, offset: number, size: number, align: number, out: Note[], section: number | undefined): void {
  // gABI: 4-byte padding; GNU property notes use 8 in sections aligned to 8.
  const pad = align === 8 ? 8 : 4;
  const end = offset + size;
  let at = offset;
  while (at + 12 <= end) {
    const namesz = c.u32(at);
    const descsz = c.u32(at + 4);
    const type = c.u32(at + 8);
    const nameAt = at + 12;
    // Padding aligns positions relative to the (aligned) container, not the field sizes.
    const descAt = offset + alignUp(nameAt + namesz - offset, pad);
    const next = offset + alignUp(descAt + descsz - offset, pad);
    if (descAt + descsz > end || nameAt + namesz > end) {
      throw new ElfError('ELF_BAD_NOTE', at, `note of ${namesz}+${descsz} bytes runs past the end of its ${size}-byte container`);
    }
    // The name is NUL-terminated within namesz; readelf shows what precedes the NUL.
    let nameEnd = nameAt;
    while (nameEnd < nameAt + namesz && c.bytes[nameEnd] !== 0) nameEnd++;
    const note: Note = {
      name: c.text.toString('utf8', nameAt, nameEnd),
      type,
      desc: c.bytes.subarray(descAt, descAt + descsz),
      ...(section !== undefined ? { section } : {}),
    };
    out.push(note);
    at = Math.min(next, end);
  }
}
