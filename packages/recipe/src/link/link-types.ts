/** The handler linker's inputs and outputs. */

/** Where the caller placed the two parts of a handler (segment addresses from planLayout). */
export interface HandlerLayout {
  /** Start of the text part (code, then read-only data), in an executable segment. */
  readonly textVa: bigint;
  /** Start of the data part (data, then bss), in a writable segment. */
  readonly dataVa: bigint;
}

/** How to link a handler object. */
export interface LinkOptions {
  /**
   * Accept R_X86_64_64 (an absolute address written into data). Only right when the output is
   * loaded at its link address, that is an ET_EXEC (non-PIE) program: the caller passes true then.
   */
  readonly absoluteOk?: boolean;
  /** The object's file name, for messages (default `<handler object>`). */
  readonly file?: string;
  /** The entry function (default `libos_handler`). */
  readonly entry?: string;
}

/** The sizes and alignments of a handler's two parts, known before any address is chosen. */
export interface HandlerMeasure {
  /** Bytes of the text part (code then read-only data). */
  readonly textSize: number;
  /** The alignment `textVa` must have. */
  readonly textAlign: number;
  /** Bytes of the data part that come from the file (initialised data). */
  readonly dataFileSize: number;
  /** Bytes of the data part in memory: initialised data, then bss (zero-filled). */
  readonly dataMemSize: number;
  /** The alignment `dataVa` must have. */
  readonly dataAlign: number;
  /**
   * Whether the code touches vector, mask or x87 state, known before layout so the caller can
   * choose a stub that saves it (the stub's size is part of the layout).
   */
  readonly usesVectorRegisters: boolean;
  /** The first such instruction: its offset in the text part, and its text (unrelocated). */
  readonly vectorUse?: { readonly offset: number; readonly instruction: string };
}

/** A symbol of the linked handler, at its final address (for .symtab of the output). */
export interface LinkedSymbol {
  readonly name: string;
  readonly va: bigint;
  readonly size: number;
  readonly type: 'func' | 'object';
}

/** The first instruction found to touch vector, mask or x87 state. */
export interface VectorUse {
  readonly va: bigint;
  /** The instruction in GNU syntax, for messages. */
  readonly instruction: string;
}

/** A handler linked at the caller's addresses, ready to be written into two segments. */
export interface LinkedHandler {
  /** Code (.text*) then read-only data (.rodata*), each section at its alignment from textVa. */
  readonly text: Uint8Array;
  /** Initialised data (.data*, .data.rel.ro*); the bss follows in memory, not in these bytes. */
  readonly data: Uint8Array;
  /** The data part's size in memory (data plus bss and COMMON symbols): the segment's memsz. */
  readonly dataMemSize: number;
  /** Function and object symbols, local and global, at their linked addresses. */
  readonly symbols: LinkedSymbol[];
  /** Address of `libos_handler`. */
  readonly entryVa: bigint;
  /** Whether any instruction touches xmm/ymm/zmm/mm/k/x87 state (the stub must then save it). */
  readonly usesVectorRegisters: boolean;
  /** The first such instruction, when there is one. */
  readonly vectorUse?: VectorUse;
}
