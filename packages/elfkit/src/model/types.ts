// The reader's data model. Virtual addresses and symbol values are bigint (they can use all 64
// bits); file offsets and sizes are number (a file we can hold in memory fits in 2^53).

/** What kind of program a file is, from e_type, PT_INTERP and DT_FLAGS_1. */
export type ElfKind = 'exec' | 'pie' | 'static' | 'static-pie' | 'shared' | 'relocatable';

/** The ELF64 file header. */
export interface ElfHeader {
  /** e_ident[EI_OSABI] */
  readonly osabi: number;
  /** e_type (ET_*) */
  readonly type: number;
  /** e_machine (always EM_X86_64: the reader refuses others) */
  readonly machine: number;
  readonly version: number;
  readonly entry: bigint;
  readonly phoff: number;
  readonly shoff: number;
  readonly flags: number;
  readonly ehsize: number;
  readonly phentsize: number;
  /** The real count (extended numbering resolved). */
  readonly phnum: number;
  readonly shentsize: number;
  /** The real count (extended numbering through section 0 resolved). */
  readonly shnum: number;
  /** The real index (SHN_XINDEX resolved). */
  readonly shstrndx: number;
}

/** One section header. */
export interface Section {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: bigint;
  readonly va: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly align: number;
  readonly entsize: number;
  /** File offset of this section's header (for error positions and in-place edits). */
  readonly headerOffset: number;
}

/** One program header. */
export interface Segment {
  readonly index: number;
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly va: bigint;
  readonly pa: bigint;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
  /** File offset of this program header. */
  readonly headerOffset: number;
}

/** One symbol of .symtab or .dynsym. */
export interface ElfSymbol {
  /** Index in its table. */
  readonly index: number;
  readonly name: string;
  readonly value: bigint;
  readonly size: number;
  /** STT_* */
  readonly type: number;
  /** STB_* */
  readonly bind: number;
  /** STV_* */
  readonly visibility: number;
  /** st_shndx, raw (SHN_UNDEF, SHN_ABS, ... kept as they are). */
  readonly section: number;
}

/** One entry of the dynamic section, up to (not including) DT_NULL. */
export interface DynamicEntry {
  readonly tag: number;
  readonly value: bigint;
}

/**
 * One relocation. RELR entries are decoded into one relocation per relocated word, with type
 * R_X86_64_RELATIVE, symbol 0 and the in-place value as addend.
 */
export interface Relocation {
  /** Name of the relocation section it came from. */
  readonly section: string;
  /** r_offset: a va in linked files, an offset into the target section in a .o. */
  readonly offset: bigint;
  readonly type: number;
  /** Symbol index into the table named by the relocation section's sh_link. */
  readonly symbol: number;
  readonly addend: bigint;
  readonly kind: 'rela' | 'relr';
  /** sh_info of the relocation section: the section index it applies to (a .o, .rela.plt). */
  readonly target?: number;
  /** sh_link of the relocation section: the symbol table `symbol` indexes (RELA; absent when 0). */
  readonly symbolTable?: number;
}

/** One note (from SHT_NOTE sections, or PT_NOTE segments when there are no sections). */
export interface Note {
  readonly name: string;
  readonly type: number;
  /** A view into the file's bytes. */
  readonly desc: Uint8Array;
  /** Index of the section it came from. */
  readonly section?: number;
}

/** A function's address range [start, end). */
export interface FunctionRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly name?: string;
  readonly source: 'symbol' | 'eh_frame';
  /** In a .o: the section index; start and end are offsets in that section. */
  readonly section?: number;
}

/** One entry of a syscall annotation table, resolved to the true site address. */
export interface SyscallAnnotation {
  /** The site's va (in a .o: the offset in section `section`). */
  readonly site: bigint;
  /** Bytes reserved at the site: `syscall` plus the NOPs (12 for the seed's macro). */
  readonly length: number;
  readonly form: 'quad' | 'pcrel';
  /** File offset of the table entry. */
  readonly entryOffset: number;
  /** In a .o: the index of the section that holds the site. */
  readonly section?: number;
}

/** A parsed ELF64 x86-64 file: views over one buffer, tables built on first access. */
export interface ElfFile {
  readonly bytes: Uint8Array;
  readonly header: ElfHeader;
  readonly kind: ElfKind;
  readonly sections: Section[];
  readonly segments: Segment[];
  readonly symbols: ElfSymbol[];
  readonly dynamicSymbols: ElfSymbol[];
  readonly dynamic: DynamicEntry[];
  readonly relocations: Relocation[];
  readonly notes: Note[];
  readonly buildId: string | undefined;
  /** The first section with this name. */
  section(name: string): Section | undefined;
  /** Function ranges, sorted by start (in a .o by section, then start): from symbols, else from .eh_frame FDEs. */
  functions(): FunctionRange[];
  /** Through PT_LOAD file ranges (section addresses for ET_REL). */
  vaToOffset(va: bigint): number | undefined;
  offsetToVa(offset: number): bigint | undefined;
  /** A view of `length` file-backed bytes at `va`; throws ELF_VA_UNMAPPED. */
  readVa(va: bigint, length: number): Uint8Array;
  /** Every syscall annotation, in table order (quad tables first, then pcrel tables). */
  syscallAnnotations(): SyscallAnnotation[];
}
