/**
 * The address-independent half of linking a handler: read the object, decide which section goes
 * into which part and at which offset, and check every relocation and symbol. Whatever can be
 * refused is refused here, so `measureHandlerObject` already reports it before the caller lays
 * out segments.
 */
import {
  ET_REL, readElf, SHF_ALLOC, SHF_EXECINSTR, SHF_TLS, SHF_WRITE, SHN_ABS, SHN_COMMON, SHN_LORESERVE,
  SHN_UNDEF, SHT_FINI_ARRAY, SHT_INIT_ARRAY, SHT_NOBITS, SHT_NOTE, SHT_PREINIT_ARRAY, SHT_REL,
  SHT_X86_64_UNWIND, STB_GLOBAL, STB_WEAK, STT_FUNC, STT_NOTYPE,
  type ElfFile, type ElfSymbol, type Section,
} from '@libos/elfkit';
import { findVectorUse } from './detect-vector-use.js';
import { LinkError } from './link-errors.js';
import type { HandlerMeasure, LinkOptions } from './link-types.js';
import { planGotRelaxation, type GotRelaxation } from './relax-got.js';
import { alignUp } from '../align.js';
import { classifyRelocation, relocationTypeName, relocationWidth, type RelocationKind } from './relocation-kinds.js';

/** A section of the object and where it lands in its part. */
export interface PlacedSection {
  readonly section: Section;
  readonly part: 'text' | 'data';
  /** Offset from the start of its part. */
  readonly offset: number;
  readonly exec: boolean;
  readonly nobits: boolean;
}

/** One relocation, checked, with everything needed to apply it once addresses are known. */
export interface PlannedRelocation {
  readonly target: PlacedSection;
  /** Offset of the field in the target section. */
  readonly offset: number;
  readonly type: number;
  readonly kind: RelocationKind;
  readonly relaxation?: GotRelaxation;
  readonly symbol: ElfSymbol;
  /** The symbol's name, or its section's for a section symbol (for messages). */
  readonly symbolName: string;
  readonly addend: bigint;
}

/** A handler object ready to be linked at any addresses. */
export interface HandlerObjectPlan {
  readonly file: string;
  readonly elf: ElfFile;
  /** By section index. */
  readonly placed: ReadonlyMap<number, PlacedSection>;
  /** COMMON symbols by symbol index: their offset in the data part (in the bss). */
  readonly commons: ReadonlyMap<number, number>;
  readonly relocations: readonly PlannedRelocation[];
  readonly entry: ElfSymbol;
  readonly measure: HandlerMeasure;
}

const DEFAULT_FILE = '<handler object>';

/** Reads and checks `obj`, and places its sections; throws {@link LinkError}. */
export function planHandlerObject(obj: Uint8Array, opts: LinkOptions = {}): HandlerObjectPlan {
  const file = opts.file ?? DEFAULT_FILE;
  const elf = readObject(obj, file);
  const { placed, commons, measure } = placeSections(elf, file);
  checkSymbolsInside(elf, file, placed);
  const relocations = planRelocations(elf, file, placed, opts.absoluteOk === true);
  const entry = findEntry(elf, file, placed, opts.entry ?? 'libos_handler');
  return { file, elf, placed, commons, relocations, entry, measure };
}

function readObject(obj: Uint8Array, file: string): ElfFile {
  let elf: ElfFile;
  try {
    elf = readElf(obj);
  } catch (e) {
    throw new LinkError('LINK_BAD_OBJECT', { file }, e instanceof Error ? e.message : String(e));
  }
  if (elf.header.type !== ET_REL) {
    throw new LinkError('LINK_BAD_OBJECT', { file }, `not a relocatable object (e_type ${elf.header.type}): give the handler as C source or a .o compiled with -c`);
  }
  for (const s of elf.sections) {
    // The reader decodes RELA only; x86-64 never uses REL, so one here means a foreign toolchain.
    if (s.type === SHT_REL) throw new LinkError('LINK_BAD_OBJECT', { file, section: s.name }, 'SHT_REL relocations are not used on x86-64');
  }
  return elf;
}

/** Which group a section belongs to, in the order the groups are laid out; undefined = dropped. */
type Group = 'code' | 'rodata' | 'data' | 'bss';

function groupOf(s: Section, file: string): Group | undefined {
  if ((s.flags & SHF_ALLOC) === 0n) return undefined; // .comment, .note.GNU-stack, debug info, symbol tables
  // Unwind tables describe the object's own layout and would need their own relocation; the
  // handler is a leaf as far as the program's unwinder is concerned, so they are dropped.
  if (s.type === SHT_NOTE || s.type === SHT_X86_64_UNWIND || s.name === '.eh_frame') return undefined;
  // Thread-local sections are left out rather than refused here: the TLS relocations that use
  // them are refused with the instruction's position, which says more than the section's name.
  if ((s.flags & SHF_TLS) !== 0n) return undefined;
  if (s.type === SHT_INIT_ARRAY || s.type === SHT_FINI_ARRAY || s.type === SHT_PREINIT_ARRAY ||
      /^\.(ctors|dtors|init|fini)(\.|$)/.test(s.name)) {
    throw new LinkError('LINK_UNSUPPORTED_SECTION', { file, section: s.name }, 'constructors and destructors never run in a handler');
  }
  const exec = (s.flags & SHF_EXECINSTR) !== 0n;
  const write = (s.flags & SHF_WRITE) !== 0n;
  if (exec && write) throw new LinkError('LINK_UNSUPPORTED_SECTION', { file, section: s.name }, 'a section both writable and executable');
  if (exec) return 'code';
  if (write) return s.type === SHT_NOBITS ? 'bss' : 'data';
  return 'rodata';
}

/**
 * The handler's text and data each start on a page of their own, so any alignment up to a page
 * holds wherever the rewrite puts them. An alignment that is not a power of two is malformed (the
 * ELF specification allows none); one above a page cannot be promised.
 */
const MAX_HANDLER_ALIGN = 4096;

function checkedAlign(value: number, at: { file: string; section?: string; symbol?: string }, what: string): number {
  if (value <= 1) return 1; // 0 and 1: no constraint
  if (!Number.isSafeInteger(value) || 2 ** Math.round(Math.log2(value)) !== value) {
    throw new LinkError('LINK_BAD_OBJECT', at, `${what} ${value} is not a power of two`);
  }
  if (value > MAX_HANDLER_ALIGN) {
    throw new LinkError('LINK_UNSUPPORTED_SECTION', at, `${what} ${value} is more than a page (${MAX_HANDLER_ALIGN}): the handler's parts start on a page, no more can be promised`);
  }
  return value;
}

function placeSections(elf: ElfFile, file: string): Pick<HandlerObjectPlan, 'placed' | 'commons' | 'measure'> {
  const groups: Record<Group, Section[]> = { code: [], rodata: [], data: [], bss: [] };
  for (const s of elf.sections) {
    const g = groupOf(s, file);
    if (g !== undefined) groups[g].push(s);
  }
  const placed = new Map<number, PlacedSection>();
  let textSize = 0;
  let textAlign = 1;
  let dataSize = 0;
  let dataAlign = 1;
  for (const g of ['code', 'rodata'] as const) {
    for (const s of groups[g]) {
      const align = checkedAlign(s.align, { file, section: s.name }, 'sh_addralign');
      textSize = alignUp(textSize, align);
      textAlign = Math.max(textAlign, align);
      placed.set(s.index, { section: s, part: 'text', offset: textSize, exec: g === 'code', nobits: s.type === SHT_NOBITS });
      textSize += s.size;
    }
  }
  let dataFileSize = 0;
  for (const g of ['data', 'bss'] as const) {
    for (const s of groups[g]) {
      const align = checkedAlign(s.align, { file, section: s.name }, 'sh_addralign');
      dataSize = alignUp(dataSize, align);
      dataAlign = Math.max(dataAlign, align);
      placed.set(s.index, { section: s, part: 'data', offset: dataSize, exec: false, nobits: g === 'bss' });
      dataSize += s.size;
      if (g === 'data') dataFileSize = dataSize;
    }
  }
  // COMMON symbols (gcc -fcommon) have no section: the linker allocates them, in the bss.
  const commons = new Map<number, number>();
  for (const sym of elf.symbols) {
    if (sym.section !== SHN_COMMON) continue;
    const align = checkedAlign(Number(sym.value), { file, symbol: sym.name }, 'the COMMON symbol\'s alignment');
    dataSize = alignUp(dataSize, align);
    dataAlign = Math.max(dataAlign, align);
    commons.set(sym.index, dataSize);
    dataSize += sym.size;
  }
  const vectorUse = findVectorUseIn(elf, placed);
  return {
    placed,
    commons,
    measure: {
      textSize, textAlign, dataFileSize, dataMemSize: dataSize, dataAlign,
      usesVectorRegisters: vectorUse !== undefined,
      ...(vectorUse !== undefined ? { vectorUse } : {}),
    },
  };
}

/** The first vector instruction of the unrelocated code, decoded at offsets of the text part. */
function findVectorUseIn(elf: ElfFile, placed: ReadonlyMap<number, PlacedSection>): HandlerMeasure['vectorUse'] {
  for (const p of placed.values()) {
    if (!p.exec) continue;
    const s = p.section;
    const use = findVectorUse(elf.bytes.subarray(s.offset, s.offset + s.size), BigInt(p.offset));
    if (use !== undefined) return { offset: Number(use.va), instruction: use.instruction };
  }
  return undefined;
}

function planRelocations(
  elf: ElfFile, file: string, placed: ReadonlyMap<number, PlacedSection>, absoluteOk: boolean,
): PlannedRelocation[] {
  const relocs = elf.relocations.filter((r) => r.kind === 'rela' && r.target !== undefined && placed.has(r.target));
  // Types first, over the whole object: a TLS access also calls __tls_get_addr, and "thread-local
  // storage" is the fault to report, not the undefined helper.
  const kinds: RelocationKind[] = [];
  for (const r of relocs) {
    const target = placed.get(r.target ?? -1) as PlacedSection;
    const at = { file, section: target.section.name, offset: Number(r.offset), symbol: symbolName(elf, r.symbol) };
    const c = classifyRelocation(r.type, absoluteOk || isAbsoluteSymbol(elf, r.symbol));
    if ('refused' in c) throw new LinkError('LINK_UNSUPPORTED_RELOCATION', at, `${c.refused} (symbol ${at.symbol})`);
    kinds.push(c.kind);
  }
  const out: PlannedRelocation[] = [];
  relocs.forEach((r, i) => {
    const target = placed.get(r.target ?? -1) as PlacedSection;
    const kind = kinds[i] as RelocationKind;
    const offset = Number(r.offset);
    const name = symbolName(elf, r.symbol);
    const at = { file, section: target.section.name, offset, symbol: name };
    if (target.nobits) throw new LinkError('LINK_BAD_OBJECT', at, 'a relocation inside a section without contents');
    if (r.offset < 0n || offset + relocationWidth(kind) > target.section.size) {
      throw new LinkError('LINK_BAD_OBJECT', at, `${relocationTypeName(r.type)} field lies outside the section`);
    }
    const symbol = checkSymbol(elf, placed, r.symbol, at);
    if (kind !== 'abs64' && symbol.section === SHN_ABS && !absoluteOk) {
      // The distance from the code to a fixed address changes with the load bias.
      throw new LinkError('LINK_UNSUPPORTED_RELOCATION', at,
        `${relocationTypeName(r.type)} reaches the absolute symbol ${name} PC-relatively, which is only right in a non-PIE executable`);
    }
    let relaxation: GotRelaxation | undefined;
    if (kind === 'got') {
      if (!target.exec) {
        throw new LinkError('LINK_UNSUPPORTED_RELOCATION', at, `${relocationTypeName(r.type)} against ${name} outside code: a GOT slot would hold an absolute address`);
      }
      const bytes = elf.bytes.subarray(target.section.offset, target.section.offset + target.section.size);
      const plan = planGotRelaxation(bytes, offset, r.addend);
      if (typeof plan !== 'string') {
        throw new LinkError('LINK_UNSUPPORTED_RELOCATION', at, `${relocationTypeName(r.type)} against ${name} cannot be resolved without a GOT: ${plan.refused}`);
      }
      relaxation = plan;
    }
    out.push({ target, offset, type: r.type, kind, symbol, symbolName: name, addend: r.addend, ...(relaxation ? { relaxation } : {}) });
  });
  return out;
}

function symbolName(elf: ElfFile, index: number): string {
  const sym = elf.symbols[index];
  if (sym === undefined) return `#${index}`;
  if (sym.name !== '') return sym.name;
  // Section symbols have no name of their own; the section's is the useful one.
  const s = elf.sections[sym.section];
  return sym.section !== SHN_UNDEF && s !== undefined ? s.name : `#${index}`;
}

function isAbsoluteSymbol(elf: ElfFile, index: number): boolean {
  // An absolute symbol's address does not move with the load bias, so R_X86_64_64 against it is
  // right in any output.
  return elf.symbols[index]?.section === SHN_ABS;
}

function checkSymbol(
  elf: ElfFile, placed: ReadonlyMap<number, PlacedSection>, index: number,
  at: { file: string; section: string; offset: number; symbol: string },
): ElfSymbol {
  const sym = elf.symbols[index];
  if (sym === undefined || index === 0) throw new LinkError('LINK_BAD_OBJECT', at, `relocation refers to symbol index ${index}, which does not exist`);
  if (sym.section === SHN_UNDEF) {
    const weak = sym.bind === STB_WEAK ? 'weak ' : '';
    throw new LinkError('LINK_UNDEFINED_SYMBOL', at,
      `undefined ${weak}symbol ${sym.name}: a handler is linked alone (no libc, no program symbols); define it in the handler`);
  }
  if (sym.section === SHN_ABS || sym.section === SHN_COMMON) return sym;
  if (sym.section >= SHN_LORESERVE) throw new LinkError('LINK_BAD_OBJECT', at, `symbol ${sym.name} has special section index 0x${sym.section.toString(16)}`);
  if (!placed.has(sym.section)) {
    const s = elf.sections[sym.section];
    throw new LinkError('LINK_UNSUPPORTED_SECTION', at,
      `symbol ${symbolName(elf, index)} lies in section ${s?.name ?? sym.section}, which is not linked into the handler`);
  }
  return sym;
}

/**
 * Every symbol of a linked section lies inside it (a .o's symbol values are offsets in their
 * section): one past its end would put a call or an address outside the added code, found only
 * when the writer checks the output, as an internal error.
 */
function checkSymbolsInside(elf: ElfFile, file: string, placed: ReadonlyMap<number, PlacedSection>): void {
  for (const sym of elf.symbols) {
    if (!placed.has(sym.section)) continue;
    const section = elf.sections[sym.section]!;
    if (sym.value + BigInt(sym.size) > BigInt(section.size)) {
      const name = symbolName(elf, sym.index);
      const offset = sym.value <= BigInt(Number.MAX_SAFE_INTEGER) ? { offset: Number(sym.value) } : {};
      throw new LinkError('LINK_BAD_OBJECT', { file, section: section.name, ...offset, symbol: name },
        `symbol ${name} (at +0x${sym.value.toString(16)}, ${sym.size} bytes) lies outside its section ${section.name} of ${section.size} bytes`);
    }
  }
}

function findEntry(elf: ElfFile, file: string, placed: ReadonlyMap<number, PlacedSection>, name: string): ElfSymbol {
  const candidates = elf.symbols.filter((s) => s.name === name && s.section !== SHN_UNDEF);
  const global = candidates.find((s) => s.bind === STB_GLOBAL || s.bind === STB_WEAK);
  if (global === undefined) {
    const detail = candidates.length > 0
      ? `${name} is static: declare it as a global function (include libos-handler.h for the prototype)`
      : `the object does not define ${name}(long nr, long a1, ..., long a6)`;
    throw new LinkError('LINK_NO_HANDLER', { file, symbol: name }, detail);
  }
  const p = placed.get(global.section);
  if (p === undefined || !p.exec || (global.type !== STT_FUNC && global.type !== STT_NOTYPE)) {
    throw new LinkError('LINK_NO_HANDLER', { file, symbol: name }, `${name} is not a function in an executable section`);
  }
  return global;
}
