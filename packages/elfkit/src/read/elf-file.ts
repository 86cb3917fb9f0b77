import { ElfError } from '../errors.js';
import {
  DF_1_PIE, DT_FLAGS_1, DT_SONAME, ET_EXEC, ET_REL, NT_GNU_BUILD_ID, PT_GNU_EH_FRAME, PT_INTERP, PT_LOAD,
  SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB,
} from '../model/constants.js';
import type {
  DynamicEntry, ElfFile, ElfHeader, ElfKind, ElfSymbol, FunctionRange, Note, Relocation, Section,
  Segment, SyscallAnnotation,
} from '../model/types.js';
import { AddressMap } from './address-map.js';
import { Cursor } from './cursor.js';
import { readAnnotations } from './read-annotations.js';
import { readDynamic } from './read-dynamic.js';
import { readEhFrame, sectionFdes, type Fde } from './read-eh-frame.js';
import { functionsFromBigSymbols, functionsFromFdes, functionsFromSymbols } from './read-functions.js';
import { readHeader } from './read-header.js';
import { readNotes } from './read-notes.js';
import { readRelocations } from './read-relocations.js';
import { readSections } from './read-sections.js';
import { readSegments } from './read-segments.js';
import { readFunctionSymbols, readSymbols } from './read-symbols.js';

/**
 * The reader's ElfFile: header, sections and segments are read and checked up front; every other
 * table is built on first access and kept. All byte data are views of `bytes`.
 */
export class ElfFileReader implements ElfFile {
  readonly bytes: Uint8Array;
  readonly header: ElfHeader;
  readonly sections: Section[];
  readonly segments: Segment[];
  private readonly cursor: Cursor;
  private readonly map: AddressMap;
  private readonly byName = new Map<string, Section>();
  private cache: {
    symbols?: ElfSymbol[];
    dynamicSymbols?: ElfSymbol[];
    dynamic?: DynamicEntry[];
    relocations?: Relocation[];
    notes?: Note[];
    functions?: FunctionRange[];
    annotations?: SyscallAnnotation[];
    buildId?: string | undefined;
    kind?: ElfKind;
    otherSymbols?: Map<number, ElfSymbol[]>;
    mainSymbolTables?: { symtab: Section | undefined; dynsym: Section | undefined };
  } = {};

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.cursor = new Cursor(bytes);
    this.header = readHeader(this.cursor);
    this.sections = readSections(this.cursor, this.header);
    this.segments = readSegments(this.cursor, this.header);
    this.map = new AddressMap(this.segments, this.sections);
    for (const s of this.sections) if (!this.byName.has(s.name)) this.byName.set(s.name, s);
  }

  get kind(): ElfKind {
    return (this.cache.kind ??= this.computeKind());
  }

  get symbols(): ElfSymbol[] {
    return (this.cache.symbols ??= this.readTable(SHT_SYMTAB));
  }

  get dynamicSymbols(): ElfSymbol[] {
    return (this.cache.dynamicSymbols ??= this.readTable(SHT_DYNSYM));
  }

  get dynamic(): DynamicEntry[] {
    return (this.cache.dynamic ??= readDynamic(this.cursor, this.sections, this.segments));
  }

  get relocations(): Relocation[] {
    return (this.cache.relocations ??= readRelocations(this.cursor, this.sections, this.map));
  }

  get notes(): Note[] {
    return (this.cache.notes ??= readNotes(this.cursor, this.sections, this.segments));
  }

  get buildId(): string | undefined {
    if (!('buildId' in this.cache)) {
      const n = this.notes.find((x) => x.name === 'GNU' && x.type === NT_GNU_BUILD_ID);
      this.cache.buildId = n === undefined ? undefined : Buffer.from(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength).toString('hex');
    }
    return this.cache.buildId;
  }

  section(name: string): Section | undefined {
    return this.byName.get(name);
  }

  functions(): FunctionRange[] {
    return (this.cache.functions ??= this.computeFunctions());
  }

  vaToOffset(va: bigint): number | undefined {
    return this.map.vaToOffset(va);
  }

  offsetToVa(offset: number): bigint | undefined {
    return this.map.offsetToVa(offset);
  }

  readVa(va: bigint, length: number): Uint8Array {
    const offset = this.map.rangeOffset(va, length);
    return this.bytes.subarray(offset, offset + length);
  }

  syscallAnnotations(): SyscallAnnotation[] {
    return (this.cache.annotations ??= readAnnotations({
      cursor: this.cursor,
      type: this.header.type,
      sections: this.sections,
      relocations: () => this.relocations,
      symbolsOf: (table) => this.symbolsOf(table),
    }));
  }

  private readTable(type: number): ElfSymbol[] {
    const main = this.mainSymbolTables();
    const s = type === SHT_SYMTAB ? main.symtab : main.dynsym;
    return s === undefined ? [] : readSymbols(this.cursor, this.sections, s);
  }

  /** The tables `symbols` and `dynamicSymbols` read: the first of each type. */
  private mainSymbolTables(): { symtab: Section | undefined; dynsym: Section | undefined } {
    return (this.cache.mainSymbolTables ??= {
      symtab: this.sections.find((x) => x.type === SHT_SYMTAB),
      dynsym: this.sections.find((x) => x.type === SHT_DYNSYM),
    });
  }

  private symbolsOf(table: Section): ElfSymbol[] {
    // Asked once per relocation an annotation table of a .o holds: the main tables are found once.
    const main = this.mainSymbolTables();
    if (table.type === SHT_SYMTAB && main.symtab === table) return this.symbols;
    if (table.type === SHT_DYNSYM && main.dynsym === table) return this.dynamicSymbols;
    if (table.type !== SHT_SYMTAB && table.type !== SHT_DYNSYM) {
      throw new ElfError('ELF_BAD_INDEX', table.headerOffset, `section ${table.index} (${table.name}) is not a symbol table`);
    }
    const other = (this.cache.otherSymbols ??= new Map());
    let syms = other.get(table.index);
    if (syms === undefined) other.set(table.index, (syms = readSymbols(this.cursor, this.sections, table)));
    return syms;
  }

  private computeKind(): ElfKind {
    const t = this.header.type;
    if (t === ET_REL) return 'relocatable';
    const interp = this.segments.some((p) => p.type === PT_INTERP);
    if (t === ET_EXEC) return interp ? 'exec' : 'static';
    const flags1 = this.dynamic.find((d) => d.tag === DT_FLAGS_1)?.value ?? 0n;
    if ((flags1 & BigInt(DF_1_PIE)) !== 0n) return interp ? 'pie' : 'static-pie';
    // Older linkers set no DF_1_PIE: an interpreter without a soname is a PIE (libc.so.6 has both).
    const soname = this.dynamic.some((d) => d.tag === DT_SONAME);
    return interp && !soname ? 'pie' : 'shared';
  }

  private computeFunctions(): FunctionRange[] {
    const symtab = this.sections.find((x) => x.type === SHT_SYMTAB);
    const dynsym = this.sections.find((x) => x.type === SHT_DYNSYM);
    const tables = [symtab, dynsym].filter((t): t is Section => t !== undefined);
    if (symtab === undefined) return functionsFromFdes(this.fdes(), this.functionsFromSymbolTables(tables, false));
    return this.functionsFromSymbolTables(tables, this.header.type === ET_REL);
  }

  private functionsFromSymbolTables(tables: readonly Section[], relocatable: boolean): FunctionRange[] {
    const symbols = readFunctionSymbols(this.cursor, this.sections, tables);
    if (symbols !== undefined) return functionsFromSymbols(symbols, relocatable);
    return functionsFromBigSymbols(tables.map((t) => this.symbolsOf(t)), relocatable);
  }

  private fdes(): readonly Fde[] {
    const s = this.section('.eh_frame');
    // A NOBITS .eh_frame (separate debug files) has no bytes to read.
    if (s !== undefined && s.size > 0) return s.type === SHT_NOBITS ? [] : sectionFdes(this, this.cursor, s);
    // Without sections, .eh_frame_hdr (PT_GNU_EH_FRAME) says where .eh_frame starts; its end is
    // the end of the loaded range holding it.
    const hdr = this.segments.find((p) => p.type === PT_GNU_EH_FRAME);
    if (hdr === undefined || hdr.filesz < 8) return [];
    const c = this.cursor;
    const encoding = c.u8(hdr.offset + 1);
    if (encoding !== 0x1b) return []; // pcrel|sdata4 is what every linker writes
    const start = BigInt.asUintN(64, hdr.va + 4n + BigInt(c.i32(hdr.offset + 4)));
    const offset = this.map.vaToOffset(start);
    if (offset === undefined) throw new ElfError('ELF_BAD_EH_FRAME', hdr.offset + 4, '.eh_frame_hdr points at an unmapped .eh_frame');
    const load = this.segments.find((p) => offset >= p.offset && offset < p.offset + p.filesz && p.type === PT_LOAD);
    const end = load === undefined ? c.length : load.offset + load.filesz;
    return readEhFrame(c, offset, end - offset, start);
  }
}
