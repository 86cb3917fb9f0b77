import { CliError } from './errors.js';

/**
 * Engine codes that mean the input cannot be handled (exit 2), as opposed to the engine producing
 * a bad edit. The writer's layout and patch checks (ELF_PATCH_OVERLAP, ELF_SEGMENT_*...) and the
 * encoder (ENC_*) guard the engine's own output: those are internal errors, exit 3.
 * docs/error-codes.md gives the status of every code.
 */
const INPUT_FAULTS = new Set([
  'ELF_BAD_MAGIC', 'ELF_BAD_CLASS', 'ELF_BAD_ENDIAN', 'ELF_BAD_VERSION', 'ELF_BAD_MACHINE', 'ELF_BAD_TYPE',
  'ELF_TRUNCATED', 'ELF_BAD_OFFSET', 'ELF_BAD_STRING', 'ELF_BAD_COUNT', 'ELF_BAD_ENTSIZE', 'ELF_BAD_INDEX',
  'ELF_BAD_SEGMENT', 'ELF_BAD_NOTE', 'ELF_BAD_RELOCATION', 'ELF_BAD_EH_FRAME', 'ELF_BAD_ANNOTATION',
  'ELF_VA_UNMAPPED', 'ELF_NO_PLAN', 'ELF_BAD_PLAN', 'ELF_MODIFIED', 'ELF_ALREADY_REWRITTEN',
]);
/** The input is a valid file the engine cannot rewrite (exit 2). */
const UNSUPPORTED = new Set([
  'ELF_WRITE_UNSUPPORTED', 'ELF_LAYOUT_OUT_OF_RANGE', 'ELF_SECTION_EXISTS',
  'PLAN_UNSUPPORTED_FILE', 'PLAN_SYMBOL_NOT_FOUND', 'PLAN_HANDLER', 'PLAN_BAD_JSON', 'PLAN_UNRESOLVED',
]);

interface CodedError {
  code: string;
  message: string;
}

function isCoded(e: unknown): e is CodedError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * Turn whatever an engine function threw into a {@link CliError} about `file`. An ELF reader error
 * on an input is exit 2; anything uncoded is a bug and exit 3.
 */
export function toCliError(e: unknown, file?: string): CliError {
  if (e instanceof CliError) return e;
  if (isCoded(e)) {
    const code = e.code;
    // ElfError's message already starts with its code and offset: `ELF_BAD_MAGIC at offset 0x0: ...`.
    const message = e.message.startsWith(code) ? e.message : `${code}: ${e.message}`;
    if (code === 'ERR_MODULE_NOT_FOUND') {
      // A package of the monorepo without its dist (a clean clone, or a build in progress).
      return new CliError('CLI_INTERNAL', `internal error: ${e.message.split('\n')[0]} (run \`npm run build\` at the repository root)`, { cause: e });
    }
    if (code === 'ELF_SAME_FILE') return new CliError('CLI_OUTPUT_UNWRITABLE', message, { file, engineCode: code, cause: e });
    if (INPUT_FAULTS.has(code)) return new CliError('CLI_BAD_ELF', message, { file, engineCode: code, cause: e });
    if (UNSUPPORTED.has(code) || code.startsWith('LINK_')) return new CliError('CLI_UNSUPPORTED', message, { file, engineCode: code, cause: e });
    if (/^ENOENT|^EACCES|^EISDIR|^EPERM/.test(code)) {
      return new CliError('CLI_INPUT_UNREADABLE', e.message, { file, engineCode: code, cause: e });
    }
    return new CliError('CLI_INTERNAL', `internal error: ${message}`, { file, engineCode: code, cause: e });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new CliError('CLI_INTERNAL', `internal error: ${message}`, { file, cause: e });
}
