import { ElfError } from '../errors.js';
import {
  ANNOTATION_SECTION_PCREL, ANNOTATION_SECTION_QUAD, ET_DYN, ET_REL, R_X86_64_64, R_X86_64_PC32,
  R_X86_64_RELATIVE, SHT_NOBITS,
} from '../model/constants.js';
import type { ElfSymbol, Relocation, Section, SyscallAnnotation } from '../model/types.js';
import type { Cursor } from './cursor.js';

/** What the annotation reader needs from the file; tables are fetched only when a form needs them. */
export interface AnnotationSource {
  readonly cursor: Cursor;
  readonly type: number;
  readonly sections: readonly Section[];
  relocations(): readonly Relocation[];
  symbolsOf(table: Section): readonly ElfSymbol[];
}

const QUAD_ENTRY = 9; // .quad site; .byte len
const PCREL_ENTRY = 8; // .long site - .; .byte len; .byte 0,0,0

/**
 * Reads every syscall annotation table (docs/annotation-forms.md) and resolves each entry to the
 * true site address:
 * - quad form, ET_EXEC: the value in place;
 * - quad form, ET_DYN: the addend of the R_X86_64_RELATIVE that targets the entry (RELA), or the
 *   in-place value (RELR, or no relocation);
 * - either form in a .o: symbol value + addend of the entry's relocation, `section` = the
 *   symbol's section;
 * - pcrel form, linked: entry va + int32.
 */
export function readAnnotations(src: AnnotationSource): SyscallAnnotation[] {
  const out: SyscallAnnotation[] = [];
  for (const s of src.sections) if (s.name === ANNOTATION_SECTION_QUAD) readQuad(src, s, out);
  for (const s of src.sections) if (s.name === ANNOTATION_SECTION_PCREL) readPcrel(src, s, out);
  return out;
}

function readQuad(src: AnnotationSource, s: Section, out: SyscallAnnotation[]): void {
  // A NOBITS table (separate debug files) has no entries to read.
  if (s.type === SHT_NOBITS) return;
  const c = src.cursor;
  const byEntry = relocationsFor(src, s);
  // Each entry starts 8-aligned (`.balign 8`), so entries sit 16 bytes apart and the last may
  // lack its 7 bytes of padding.
  for (let o = 0; o + QUAD_ENTRY <= s.size; o += 16) {
    const at = s.offset + o;
    const inPlace = c.u64(at);
    const length = c.u8(at + 8);
    const key = src.type === ET_REL ? BigInt(o) : s.va + BigInt(o);
    const r = byEntry.get(key);
    if (src.type === ET_REL) {
      if (r === undefined) throw new ElfError('ELF_BAD_ANNOTATION', at, 'annotation entry in a .o without a relocation');
      const { site, section } = resolveObject(src, r, at, R_X86_64_64);
      out.push({ site, length, form: 'quad', entryOffset: at, section });
    } else {
      const site = r !== undefined && (r.kind === 'relr' || r.type === R_X86_64_RELATIVE) ? BigInt.asUintN(64, r.addend) : inPlace;
      out.push({ site, length, form: 'quad', entryOffset: at });
    }
  }
}

function readPcrel(src: AnnotationSource, s: Section, out: SyscallAnnotation[]): void {
  if (s.type === SHT_NOBITS) return;
  const c = src.cursor;
  const byEntry = src.type === ET_REL ? relocationsFor(src, s) : undefined;
  for (let o = 0; o + PCREL_ENTRY <= s.size; o += PCREL_ENTRY) {
    const at = s.offset + o;
    const length = c.u8(at + 4);
    if (byEntry !== undefined) {
      const r = byEntry.get(BigInt(o));
      if (r === undefined) throw new ElfError('ELF_BAD_ANNOTATION', at, 'annotation entry in a .o without a relocation');
      // `.long 551b - .` leaves S + A - P: the site is S + A.
      const { site, section } = resolveObject(src, r, at, R_X86_64_PC32);
      out.push({ site, length, form: 'pcrel', entryOffset: at, section });
    } else {
      const site = BigInt.asUintN(64, s.va + BigInt(o) + BigInt(c.i32(at)));
      out.push({ site, length, form: 'pcrel', entryOffset: at });
    }
  }
}

// The relocations whose offset lands on this table, keyed by offset (a va in linked files, an
// offset into the table in a .o). Found through an index of all relocations made once per file:
// a file of 60,000 table sections and 150,000 relocations took minutes when each table went
// through every relocation.
function relocationsFor(src: AnnotationSource, s: Section): Map<bigint, Relocation> {
  const map = new Map<bigint, Relocation>();
  const all = src.relocations();
  let index = indexes.get(all);
  if (index === undefined) indexes.set(all, (index = indexRelocations(all)));
  if (src.type === ET_REL) {
    for (const r of index.byTarget.get(s.index) ?? []) map.set(r.offset, r);
  } else if (src.type === ET_DYN) {
    const byOffset = index.byOffset;
    const end = s.va + BigInt(s.size);
    let lo = 0;
    let hi = byOffset.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((byOffset[mid] as Relocation).offset < s.va) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < byOffset.length && (byOffset[i] as Relocation).offset < end; i++) map.set((byOffset[i] as Relocation).offset, byOffset[i] as Relocation);
  }
  return map;
}

interface RelocationIndex {
  /** RELA relocations of a .o by the section they apply to, in file order. */
  byTarget: Map<number, Relocation[]>;
  /** Every relocation by offset; equal offsets keep file order (a later one wins in the map, as before). */
  byOffset: Relocation[];
}

const indexes = new WeakMap<readonly Relocation[], RelocationIndex>();

function indexRelocations(all: readonly Relocation[]): RelocationIndex {
  const byTarget = new Map<number, Relocation[]>();
  for (const r of all) {
    if (r.kind !== 'rela' || r.target === undefined) continue;
    let list = byTarget.get(r.target);
    if (list === undefined) byTarget.set(r.target, (list = []));
    list.push(r);
  }
  const byOffset = all.map((r, i) => ({ r, i })).sort((a, b) => (a.r.offset < b.r.offset ? -1 : a.r.offset > b.r.offset ? 1 : a.i - b.i)).map((x) => x.r);
  return { byTarget, byOffset };
}

function resolveObject(src: AnnotationSource, r: Relocation, at: number, expected: number): { site: bigint; section: number } {
  if (r.type !== expected) throw new ElfError('ELF_BAD_ANNOTATION', at, `annotation entry relocated by type ${r.type}, expected ${expected}`);
  // The relocation section's own sh_link (looking the section up per entry by its name scanned
  // every section: a .o of 6,000 tables took 24 s).
  const table = r.symbolTable !== undefined ? src.sections[r.symbolTable] : undefined;
  if (table === undefined) throw new ElfError('ELF_BAD_ANNOTATION', at, `relocation section ${r.section} has no symbol table`);
  const sym = src.symbolsOf(table)[r.symbol];
  if (sym === undefined) throw new ElfError('ELF_BAD_ANNOTATION', at, `relocation names symbol ${r.symbol}, past the symbol table`);
  return { site: BigInt.asUintN(64, sym.value + r.addend), section: sym.section };
}
