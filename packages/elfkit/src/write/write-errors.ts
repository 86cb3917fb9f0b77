import { ElfError } from '../errors.js';

/**
 * Every way the writer (and revert/verify) can refuse. Part of the `ElfErrorCode` union and
 * carried by the same {@link ElfError} class, so that callers catch one error type.
 */
export type ElfWriteErrorCode =
  /** The file cannot take new segments (ET_REL, no PT_LOAD, too many headers). */
  | 'ELF_WRITE_UNSUPPORTED'
  /** The file was already rewritten (it holds a .libos.plan): rewrite the original instead. */
  | 'ELF_ALREADY_REWRITTEN'
  /** A layout request is malformed (empty name, size <= 0, duplicate name). */
  | 'ELF_LAYOUT_BAD_REQUEST'
  /** The new segments would end beyond rel32 reach (2 GiB) of the lowest code. */
  | 'ELF_LAYOUT_OUT_OF_RANGE'
  /** A patch runs past the end of the original file. */
  | 'ELF_PATCH_OUT_OF_FILE'
  /** Two patches overlap. */
  | 'ELF_PATCH_OVERLAP'
  /** A patch touches the ELF header, which the writer owns. */
  | 'ELF_PATCH_PROTECTED'
  /** A segment's va is not page aligned (not from planLayout). */
  | 'ELF_SEGMENT_MISALIGNED'
  /** A segment overlaps an existing PT_LOAD or another new segment (not from planLayout). */
  | 'ELF_SEGMENT_OVERLAP'
  /** A segment lies beyond rel32 reach of the code. */
  | 'ELF_SEGMENT_OUT_OF_RANGE'
  /** A segment is malformed (memsz < bytes.length, duplicate or empty name). */
  | 'ELF_SEGMENT_BAD'
  /** A symbol's va does not lie inside one of the new segments. */
  | 'ELF_SYMBOL_OUTSIDE'
  /** The new entry point is not inside an executable segment. */
  | 'ELF_BAD_ENTRY'
  /** A section the writer must add already exists (e.g. .debug_frame). */
  | 'ELF_SECTION_EXISTS'
  /** revert/verify: the file holds no .libos.plan. */
  | 'ELF_NO_PLAN'
  /** revert/verify: the .libos.plan is malformed. */
  | 'ELF_BAD_PLAN'
  /** revert: the file changed since it was rewritten, so the original cannot be rebuilt. */
  | 'ELF_MODIFIED'
  /** writeElfFile / writeFileAtomic: the output path names the input file. */
  | 'ELF_SAME_FILE';

/** Builds an {@link ElfError} with a writer code. `offset` is a file offset or -1. */
export function writeError(code: ElfWriteErrorCode, offset: number, message: string, va?: bigint): ElfError {
  return new ElfError(code, offset, message, va);
}
