// The writer's data model: what a caller asks for (requests, edits) and what it gets back.

/** Memory protection of a new segment: code, mutable data, or read-only data. */
export type SegmentFlags = 'rx' | 'rw' | 'r';

/** One new loadable segment to be placed by {@link planLayout}. */
export interface LayoutRequest {
  /** The name of the section that will describe it (`.libos.text`, `.libos.data`). */
  readonly name: string;
  /** Bytes of memory it needs (file bytes plus any zero-filled tail), > 0. */
  readonly size: number;
  readonly flags: SegmentFlags;
}

/** Where {@link planLayout} put a requested segment. */
export interface SegmentPlacement {
  readonly name: string;
  /** Page-aligned virtual address (link-time: a PIE or shared library is moved by its load bias). */
  readonly va: bigint;
  readonly flags: SegmentFlags;
  readonly size: number;
}

/** One in-place change inside the original file's bytes. */
export interface BytePatch {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** One new PT_LOAD with its contents. `va` must come from {@link planLayout}. */
export interface SegmentEdit {
  readonly name: string;
  readonly va: bigint;
  readonly flags: SegmentFlags;
  /** The file-backed bytes. */
  readonly bytes: Uint8Array;
  /** Memory size when larger than bytes.length (the rest is zero-filled, like .bss). */
  readonly memsz?: number;
}

/** A symbol added to .symtab so that objdump and gdb name the added code and data. */
export interface SymbolEdit {
  readonly name: string;
  readonly va: bigint;
  readonly size: number;
  readonly type: 'func' | 'object';
}

/** Everything {@link writeElf} changes in a file. */
export interface ElfEdit {
  readonly patches: readonly BytePatch[];
  readonly segments: readonly SegmentEdit[];
  readonly symbols?: readonly SymbolEdit[];
  /** CFI for the added code, stored as a non-alloc .debug_frame (built by the caller). */
  readonly debugFrame?: Uint8Array;
  /** New e_entry. */
  readonly entry?: bigint;
  /** Opaque bytes (the caller's patch plan) kept in .libos.plan. */
  readonly metadata?: Uint8Array;
}

/** One changed byte range of a rewritten file (chunk-granular). */
export interface ChangedRange {
  readonly offset: number;
  readonly length: number;
}

/** What {@link verifyElf} found. */
export interface VerifyReport {
  /** True when no byte changed since the file was written. */
  readonly ok: boolean;
  /** Changed ranges, sorted, adjacent chunks merged. */
  readonly changed: ChangedRange[];
  /** The caller's metadata stored at write time. */
  readonly metadata: Uint8Array;
}
