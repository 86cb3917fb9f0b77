// ELF constants from the gABI and the x86-64 psABI, as named numbers so that callers never write
// magic values. Only the ones a reader or rewriter of x86-64 binaries meets are listed.

/** e_type */
export const ET_NONE = 0;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

/** e_ident and e_machine */
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const EM_X86_64 = 62;

/** Special section indices */
export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHN_XINDEX = 0xffff;

/** e_phnum escape (gABI extended numbering): the real count is section 0's sh_info. */
export const PN_XNUM = 0xffff;

/** p_type */
export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_SHLIB = 5;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_EH_FRAME = 0x6474e550;
export const PT_GNU_STACK = 0x6474e551;
export const PT_GNU_RELRO = 0x6474e552;
export const PT_GNU_PROPERTY = 0x6474e553;

/** p_flags */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** sh_type */
export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_HASH = 5;
export const SHT_DYNAMIC = 6;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHT_SHLIB = 10;
export const SHT_DYNSYM = 11;
export const SHT_INIT_ARRAY = 14;
export const SHT_FINI_ARRAY = 15;
export const SHT_PREINIT_ARRAY = 16;
export const SHT_GROUP = 17;
export const SHT_SYMTAB_SHNDX = 18;
export const SHT_RELR = 19;
export const SHT_GNU_HASH = 0x6ffffff6;
export const SHT_GNU_VERDEF = 0x6ffffffd;
export const SHT_GNU_VERNEED = 0x6ffffffe;
export const SHT_GNU_VERSYM = 0x6fffffff;
export const SHT_X86_64_UNWIND = 0x70000001;

/** sh_flags (bigint, as Section.flags is) */
export const SHF_WRITE = 0x1n;
export const SHF_ALLOC = 0x2n;
export const SHF_EXECINSTR = 0x4n;
export const SHF_MERGE = 0x10n;
export const SHF_STRINGS = 0x20n;
export const SHF_INFO_LINK = 0x40n;
export const SHF_LINK_ORDER = 0x80n;
export const SHF_GROUP = 0x200n;
export const SHF_TLS = 0x400n;
export const SHF_COMPRESSED = 0x800n;

/** Symbol types (st_info & 0xf) */
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;
export const STT_COMMON = 5;
export const STT_TLS = 6;
export const STT_GNU_IFUNC = 10;

/** Symbol bindings (st_info >> 4) */
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;
export const STB_GNU_UNIQUE = 10;

/** Symbol visibility (st_other & 3) */
export const STV_DEFAULT = 0;
export const STV_INTERNAL = 1;
export const STV_HIDDEN = 2;
export const STV_PROTECTED = 3;

/** x86-64 relocation types */
export const R_X86_64_NONE = 0;
export const R_X86_64_64 = 1;
export const R_X86_64_PC32 = 2;
export const R_X86_64_GOT32 = 3;
export const R_X86_64_PLT32 = 4;
export const R_X86_64_COPY = 5;
export const R_X86_64_GLOB_DAT = 6;
export const R_X86_64_JUMP_SLOT = 7;
export const R_X86_64_RELATIVE = 8;
export const R_X86_64_GOTPCREL = 9;
export const R_X86_64_32 = 10;
export const R_X86_64_32S = 11;
export const R_X86_64_16 = 12;
export const R_X86_64_PC16 = 13;
export const R_X86_64_8 = 14;
export const R_X86_64_PC8 = 15;
export const R_X86_64_DTPMOD64 = 16;
export const R_X86_64_DTPOFF64 = 17;
export const R_X86_64_TPOFF64 = 18;
export const R_X86_64_TLSGD = 19;
export const R_X86_64_TLSLD = 20;
export const R_X86_64_DTPOFF32 = 21;
export const R_X86_64_GOTTPOFF = 22;
export const R_X86_64_TPOFF32 = 23;
export const R_X86_64_PC64 = 24;
export const R_X86_64_GOTOFF64 = 25;
export const R_X86_64_GOTPC32 = 26;
export const R_X86_64_SIZE32 = 32;
export const R_X86_64_SIZE64 = 33;
export const R_X86_64_GOTPC32_TLSDESC = 34;
export const R_X86_64_TLSDESC_CALL = 35;
export const R_X86_64_TLSDESC = 36;
export const R_X86_64_IRELATIVE = 37;
export const R_X86_64_RELATIVE64 = 38;
export const R_X86_64_GOTPCRELX = 41;
export const R_X86_64_REX_GOTPCRELX = 42;

/** d_tag */
export const DT_NULL = 0;
export const DT_NEEDED = 1;
export const DT_PLTRELSZ = 2;
export const DT_PLTGOT = 3;
export const DT_HASH = 4;
export const DT_STRTAB = 5;
export const DT_SYMTAB = 6;
export const DT_RELA = 7;
export const DT_RELASZ = 8;
export const DT_RELAENT = 9;
export const DT_STRSZ = 10;
export const DT_SYMENT = 11;
export const DT_INIT = 12;
export const DT_FINI = 13;
export const DT_SONAME = 14;
export const DT_RPATH = 15;
export const DT_SYMBOLIC = 16;
export const DT_REL = 17;
export const DT_RELSZ = 18;
export const DT_RELENT = 19;
export const DT_PLTREL = 20;
export const DT_DEBUG = 21;
export const DT_TEXTREL = 22;
export const DT_JMPREL = 23;
export const DT_BIND_NOW = 24;
export const DT_INIT_ARRAY = 25;
export const DT_FINI_ARRAY = 26;
export const DT_INIT_ARRAYSZ = 27;
export const DT_FINI_ARRAYSZ = 28;
export const DT_RUNPATH = 29;
export const DT_FLAGS = 30;
export const DT_PREINIT_ARRAY = 32;
export const DT_PREINIT_ARRAYSZ = 33;
export const DT_RELRSZ = 35;
export const DT_RELR = 36;
export const DT_RELRENT = 37;
export const DT_GNU_HASH = 0x6ffffef5;
export const DT_VERSYM = 0x6ffffff0;
export const DT_RELACOUNT = 0x6ffffff9;
export const DT_FLAGS_1 = 0x6ffffffb;
export const DT_VERDEF = 0x6ffffffc;
export const DT_VERDEFNUM = 0x6ffffffd;
export const DT_VERNEED = 0x6ffffffe;
export const DT_VERNEEDNUM = 0x6fffffff;

/** DT_FLAGS and DT_FLAGS_1 bits */
export const DF_TEXTREL = 0x4;
export const DF_BIND_NOW = 0x8;
export const DF_1_NOW = 0x1;
export const DF_1_PIE = 0x08000000;

/** Note types */
export const NT_GNU_ABI_TAG = 1;
export const NT_GNU_BUILD_ID = 3;
export const NT_GNU_PROPERTY_TYPE_0 = 5;

/** Sizes of the ELF64 structures */
export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;
export const SYM_SIZE = 24;
export const RELA_SIZE = 24;
export const DYN_SIZE = 16;
export const RELR_SIZE = 8;

/** Names of the syscall annotation sections (see docs/annotation-forms.md). */
export const ANNOTATION_SECTION_QUAD = '.libos.instructions.syscall';
export const ANNOTATION_SECTION_PCREL = '.libos.instructions.syscall.pcrel';
