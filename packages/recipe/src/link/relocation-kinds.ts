/**
 * Which x86-64 relocation types a handler object may carry and how each is resolved. The accepted
 * set is the one issue 5 names: what gcc -fPIC emits for code and data that live in one object.
 */
import {
  R_X86_64_32, R_X86_64_32S, R_X86_64_64, R_X86_64_DTPMOD64, R_X86_64_DTPOFF32, R_X86_64_DTPOFF64,
  R_X86_64_GOTPC32_TLSDESC, R_X86_64_GOTPCREL, R_X86_64_GOTPCRELX, R_X86_64_GOTTPOFF, R_X86_64_PC32,
  R_X86_64_PLT32, R_X86_64_REX_GOTPCRELX, R_X86_64_TLSDESC, R_X86_64_TLSDESC_CALL, R_X86_64_TLSGD,
  R_X86_64_TLSLD, R_X86_64_TPOFF32, R_X86_64_TPOFF64,
} from '@libos/elfkit';

/** How an accepted relocation is computed (S symbol, A addend, P place). */
export type RelocationKind =
  /** S + A - P into 32 bits (PC32, PLT32: the call goes straight to the local function). */
  | 'pc32'
  /** A GOT load relaxed into a direct PC-relative reference (see relax-got.ts). */
  | 'got'
  /** S + A into 64 bits: an absolute address. */
  | 'abs64';

const NAMES: Record<number, string> = {
  0: 'R_X86_64_NONE', 1: 'R_X86_64_64', 2: 'R_X86_64_PC32', 3: 'R_X86_64_GOT32', 4: 'R_X86_64_PLT32',
  5: 'R_X86_64_COPY', 6: 'R_X86_64_GLOB_DAT', 7: 'R_X86_64_JUMP_SLOT', 8: 'R_X86_64_RELATIVE',
  9: 'R_X86_64_GOTPCREL', 10: 'R_X86_64_32', 11: 'R_X86_64_32S', 12: 'R_X86_64_16', 13: 'R_X86_64_PC16',
  14: 'R_X86_64_8', 15: 'R_X86_64_PC8', 16: 'R_X86_64_DTPMOD64', 17: 'R_X86_64_DTPOFF64',
  18: 'R_X86_64_TPOFF64', 19: 'R_X86_64_TLSGD', 20: 'R_X86_64_TLSLD', 21: 'R_X86_64_DTPOFF32',
  22: 'R_X86_64_GOTTPOFF', 23: 'R_X86_64_TPOFF32', 24: 'R_X86_64_PC64', 25: 'R_X86_64_GOTOFF64',
  26: 'R_X86_64_GOTPC32', 32: 'R_X86_64_SIZE32', 33: 'R_X86_64_SIZE64', 34: 'R_X86_64_GOTPC32_TLSDESC',
  35: 'R_X86_64_TLSDESC_CALL', 36: 'R_X86_64_TLSDESC', 37: 'R_X86_64_IRELATIVE', 38: 'R_X86_64_RELATIVE64',
  41: 'R_X86_64_GOTPCRELX', 42: 'R_X86_64_REX_GOTPCRELX',
};

const TLS_TYPES = new Set([
  R_X86_64_DTPMOD64, R_X86_64_DTPOFF64, R_X86_64_TPOFF64, R_X86_64_TLSGD, R_X86_64_TLSLD,
  R_X86_64_DTPOFF32, R_X86_64_GOTTPOFF, R_X86_64_TPOFF32, R_X86_64_GOTPC32_TLSDESC,
  R_X86_64_TLSDESC_CALL, R_X86_64_TLSDESC,
]);

/** `R_X86_64_PC32`, or `relocation type 99` for a number without a name. */
export function relocationTypeName(type: number): string {
  return NAMES[type] ?? `relocation type ${type}`;
}

/** The width in bytes of the field a relocation writes. */
export function relocationWidth(kind: RelocationKind): number {
  return kind === 'abs64' ? 8 : 4;
}

/**
 * The kind of an accepted type, or the reason it is refused. `absoluteOk` comes from the caller:
 * an absolute address is only right when the output is loaded where it was linked.
 */
export function classifyRelocation(type: number, absoluteOk: boolean): { kind: RelocationKind } | { refused: string } {
  switch (type) {
    case R_X86_64_PC32:
    case R_X86_64_PLT32:
      return { kind: 'pc32' };
    case R_X86_64_GOTPCREL:
    case R_X86_64_GOTPCRELX:
    case R_X86_64_REX_GOTPCRELX:
      return { kind: 'got' };
    case R_X86_64_64:
      if (absoluteOk) return { kind: 'abs64' };
      return {
        refused:
          'R_X86_64_64 writes an absolute address, which is only right in a non-PIE executable (the load bias of a PIE ' +
          'or shared library is unknown when linking); avoid tables of pointers in the handler (use offsets or indices)',
      };
    case R_X86_64_32:
    case R_X86_64_32S:
      return { refused: `${relocationTypeName(type)} is an absolute 32-bit address: compile the handler with -fPIC` };
    default:
      if (TLS_TYPES.has(type)) {
        return {
          refused: `${relocationTypeName(type)} refers to thread-local storage, which belongs to the program, not the handler`,
        };
      }
      return { refused: `${relocationTypeName(type)} is not supported (accepted: PC32, PLT32, GOTPCREL, GOTPCRELX, REX_GOTPCRELX, 64)` };
  }
}
