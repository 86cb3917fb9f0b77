import { CliError } from './errors.js';

/**
 * Engine codes that mean the input cannot be handled, as opposed to the engine producing a bad
 * edit. The writer's layout and patch checks (ELF_PATCH_OVERLAP, ELF_SEGMENT_*...) guard the
 * engine's own output: those are internal errors, exit 3.
 */
const INPUT_FAULTS = /^(ELF_BAD_|ELF_TRUNCATED$|ELF_VA_UNMAPPED$|ELF_NO_PLAN$|ELF_MODIFIED$|ELF_ALREADY_REWRITTEN$|ELF_SAME_FILE$)/;
const UNSUPPORTED = /^(ELF_WRITE_UNSUPPORTED|ELF_LAYOUT_OUT_OF_RANGE|PLAN_UNSUPPORTED_FILE|PLAN_SYMBOL_NOT_FOUND|PLAN_HANDLER|PLAN_BAD_JSON|LINK_)/;

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
    if (code === 'ELF_SAME_FILE') return new CliError('CLI_OUTPUT_UNWRITABLE', message, { file, engineCode: code, cause: e });
    if (INPUT_FAULTS.test(code)) return new CliError('CLI_BAD_ELF', message, { file, engineCode: code, cause: e });
    if (UNSUPPORTED.test(code)) return new CliError('CLI_UNSUPPORTED', message, { file, engineCode: code, cause: e });
    if (/^ENOENT|^EACCES|^EISDIR|^EPERM/.test(code)) {
      return new CliError('CLI_INPUT_UNREADABLE', e.message, { file, engineCode: code, cause: e });
    }
    return new CliError('CLI_INTERNAL', `internal error: ${message}`, { file, engineCode: code, cause: e });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new CliError('CLI_INTERNAL', `internal error: ${message}`, { file, cause: e });
}
