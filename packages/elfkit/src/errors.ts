import type { ElfWriteErrorCode } from './write/write-errors.js';

/**
 * Every way the reader can refuse a file. Each code names what was wrong, not where the reader was
 * (docs/elf-error-codes.md describes each).
 */
export type ElfReadErrorCode =
  | 'ELF_BAD_MAGIC'
  | 'ELF_BAD_CLASS'
  | 'ELF_BAD_ENDIAN'
  | 'ELF_BAD_VERSION'
  | 'ELF_BAD_MACHINE'
  | 'ELF_BAD_TYPE'
  | 'ELF_TRUNCATED'
  | 'ELF_BAD_OFFSET'
  | 'ELF_BAD_STRING'
  | 'ELF_BAD_COUNT'
  | 'ELF_BAD_ENTSIZE'
  | 'ELF_BAD_INDEX'
  | 'ELF_BAD_SEGMENT'
  | 'ELF_BAD_NOTE'
  | 'ELF_BAD_RELOCATION'
  | 'ELF_BAD_EH_FRAME'
  | 'ELF_BAD_ANNOTATION'
  | 'ELF_VA_UNMAPPED';

/** Every code an {@link ElfError} can carry: the reader's and the writer's. */
export type ElfErrorCode = ElfReadErrorCode | ElfWriteErrorCode;

/**
 * The one error type the reader throws. `offset` is the file offset of the offending field or
 * structure (-1 when the problem has no file position, e.g. an unmapped virtual address; then `va`
 * says which address).
 */
export class ElfError extends Error {
  /** What was wrong. */
  readonly code: ElfErrorCode;
  /** File offset of the offending bytes, or -1. */
  readonly offset: number;
  /** The virtual address involved, for ELF_VA_UNMAPPED. */
  readonly va: bigint | undefined;

  constructor(code: ElfErrorCode, offset: number, message: string, va?: bigint) {
    super(`${code} at offset ${offset >= 0 ? `0x${offset.toString(16)}` : 'n/a'}: ${message}`);
    this.name = 'ElfError';
    this.code = code;
    this.offset = offset;
    this.va = va;
  }
}

/** True when `e` is an {@link ElfError}, optionally with the given code. */
export function isElfError(e: unknown, code?: ElfErrorCode): e is ElfError {
  return e instanceof ElfError && (code === undefined || e.code === code);
}
