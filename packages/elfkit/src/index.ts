export { readElf } from './read/read-elf.js';
export { ElfError, isElfError, type ElfErrorCode, type ElfReadErrorCode } from './errors.js';
export * from './model/constants.js';
export type {
  DynamicEntry, ElfFile, ElfHeader, ElfKind, ElfSymbol, FunctionRange, Note, Relocation, Section,
  Segment, SyscallAnnotation,
} from './model/types.js';
export * from './write/index.js';
export { cfiRowAt, type CfiRow, type CfiRule } from './read/read-cfi.js';
export { readRegularFile, NOT_REGULAR } from './read/read-regular-file.js';
export { landingPads, type LandingPads } from './read/read-lsda.js';
