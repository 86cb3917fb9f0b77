export { planLayout } from './plan-layout.js';
export { writeElf } from './write-elf.js';
export { writeElfFile, writeFileAtomic, writeFileAtomicSync, type AtomicWriteOptions } from './write-elf-file.js';
export { revertElf, type RevertOptions } from './revert-elf.js';
export { verifyElf } from './verify-elf.js';
export { readLibosPlan } from './read-libos-plan.js';
export type { ElfWriteErrorCode } from './write-errors.js';
export type {
  BytePatch, ChangedRange, ElfEdit, LayoutRequest, SegmentEdit, SegmentFlags, SegmentPlacement, SymbolEdit, VerifyReport,
} from './types.js';
