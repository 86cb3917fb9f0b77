/**
 * Errors of the handler linker. Like the reader and the encoder, the linker throws them at its API
 * boundary: a handler that cannot be linked leaves nothing half-built to carry on with.
 */

/** Every way the linker (and the compile step before it) can refuse a handler. */
export type LinkErrorCode =
  /** The C compiler failed or could not be run; the message holds its first error line. */
  | 'LINK_COMPILE_FAILED'
  /** The bytes are not an x86-64 ELF relocatable object, or one of its tables is malformed. */
  | 'LINK_BAD_OBJECT'
  /** A section the handler cannot have (constructors, writable code), or a symbol in a section
   * that is not linked (unwind tables, thread-local data). */
  | 'LINK_UNSUPPORTED_SECTION'
  /** A relocation type outside the accepted set, an absolute address in a position-independent
   * output, or a GOT reference that cannot be relaxed into a PC-relative one. */
  | 'LINK_UNSUPPORTED_RELOCATION'
  /** A referenced symbol the object does not define (a libc function, for one). */
  | 'LINK_UNDEFINED_SYMBOL'
  /** The object defines no `libos_handler` function. */
  | 'LINK_NO_HANDLER'
  /** A PC-relative reference does not reach its target from the chosen addresses (±2 GiB). */
  | 'LINK_OUT_OF_RANGE'
  /** The layout's addresses break an alignment the object asks for. */
  | 'LINK_BAD_LAYOUT';

/** Every {@link LinkErrorCode}, for documentation checks and exhaustive maps (CLI exit statuses). */
export const LINK_ERROR_CODES = [
  'LINK_COMPILE_FAILED', 'LINK_BAD_OBJECT', 'LINK_UNSUPPORTED_SECTION', 'LINK_UNSUPPORTED_RELOCATION',
  'LINK_UNDEFINED_SYMBOL', 'LINK_NO_HANDLER', 'LINK_OUT_OF_RANGE', 'LINK_BAD_LAYOUT',
] as const satisfies readonly LinkErrorCode[];

// Fails to compile when a code is added to the union but not to the list.
const listIsComplete: [Exclude<LinkErrorCode, (typeof LINK_ERROR_CODES)[number]>] extends [never] ? true : false = true;
void listIsComplete;

/** Where in the object a fault is: the file, and a section and offset within it when there is one. */
export interface LinkErrorPosition {
  readonly file: string;
  /** The section's name (for a relocation: the section it patches). */
  readonly section?: string;
  /** Offset within `section`. */
  readonly offset?: number;
  /** The symbol involved, when there is one. */
  readonly symbol?: string;
}

/**
 * The one error type of the handler linker. Its message starts with the position the way
 * compilers print it (`handler.o: .text+0x1c: ...`).
 */
export class LinkError extends Error {
  /** What was wrong. */
  readonly code: LinkErrorCode;
  /** The object (or source) file. */
  readonly file: string;
  /** The section involved, if any. */
  readonly section: string | undefined;
  /** Offset within `section`, if any. */
  readonly offset: number | undefined;
  /** The symbol involved, if any. */
  readonly symbol: string | undefined;
  /** The message without the position prefix and the code. */
  readonly detail: string;

  constructor(code: LinkErrorCode, at: LinkErrorPosition, detail: string) {
    super(`${code}: ${formatLinkPosition(at)}: ${detail}`);
    this.name = 'LinkError';
    this.code = code;
    this.file = at.file;
    this.section = at.section;
    this.offset = at.offset;
    this.symbol = at.symbol;
    this.detail = detail;
  }
}

/** True when `e` is a {@link LinkError}, optionally with the given code. */
export function isLinkError(e: unknown, code?: LinkErrorCode): e is LinkError {
  return e instanceof LinkError && (code === undefined || e.code === code);
}

/** `file`, `file: .text`, or `file: .text+0x1c`. */
export function formatLinkPosition(at: LinkErrorPosition): string {
  if (at.section === undefined) return at.file;
  if (at.offset === undefined) return `${at.file}: ${at.section}`;
  return `${at.file}: ${at.section}+0x${at.offset.toString(16)}`;
}
