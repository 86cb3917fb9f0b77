/** Codes of the errors planPatches throws; the CLI maps them to exit status 2. */
export type PlanErrorCode =
  /** The file is of a kind the writer cannot extend (an object file). */
  | 'PLAN_UNSUPPORTED_FILE'
  /** The entry names a pointer symbol the file does not define. */
  | 'PLAN_SYMBOL_NOT_FOUND'
  /** The C handler could not be compiled or linked (the cause is in the message). */
  | 'PLAN_HANDLER'
  /** The added code did not settle to a stable layout. */
  | 'PLAN_LAYOUT'
  /** The plan failed its own check (before bytes, overlaps, decoding): a bug, reported as such. */
  | 'PLAN_CHECK_FAILED'
  /** A serialised plan could not be read back. */
  | 'PLAN_BAD_JSON'
  /** A plan applied to a file other than the one it was made for. */
  | 'PLAN_INPUT_MISMATCH'
  /** The plan refers to symbols the file does not define (an external entry): a loader must resolve them. */
  | 'PLAN_UNRESOLVED';

export class PlanError extends Error {
  override readonly name = 'PlanError';
  constructor(readonly code: PlanErrorCode, message: string, readonly va?: bigint) {
    super(message);
  }
}
