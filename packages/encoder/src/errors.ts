/** Every way an encode can fail. Codes are stable; messages may change. */
export type EncoderErrorCode =
  /** Operands of different widths where the form needs one width (`mov rax, ecx`). */
  | 'ENC_OPERAND_SIZE_MISMATCH'
  /** An operand this form cannot take: rsp as an index, ah with a REX prefix, a bad scale. */
  | 'ENC_INVALID_OPERAND'
  /** No encoding exists for this combination of operand kinds (`mov mem, mem`). */
  | 'ENC_UNSUPPORTED_FORM'
  /** An immediate or displacement does not fit its field. */
  | 'ENC_IMMEDIATE_RANGE'
  /** A rel32 (or a RIP-relative disp32) cannot reach its target. */
  | 'ENC_REL32_OUT_OF_RANGE'
  /** A label was referenced but never bound. */
  | 'ENC_UNBOUND_LABEL'
  /** A label was bound twice, or belongs to another assembler. */
  | 'ENC_LABEL_REBOUND'
  /** A label from another Assembler. */
  | 'ENC_FOREIGN_LABEL'
  /** An alignment that is not a power of two, or a NOP of a bad length. */
  | 'ENC_INVALID_ALIGNMENT'
  /** relocateInstructions: this instruction cannot be moved to the new address. */
  | 'ENC_CANNOT_MOVE'
  /** relocateInstructions: the input bytes do not decode. */
  | 'ENC_INVALID_INSTRUCTION';

/**
 * Thrown at the encoder's API boundary. `instructionIndex` is the position of the offending
 * instruction in its Assembler (or in the block given to relocateInstructions); `operandIndex`
 * counts operands in Intel order from 0 (destination first), or is undefined when the error is
 * not about one operand.
 */
export class EncoderError extends Error {
  override readonly name = 'EncoderError';
  constructor(
    readonly code: EncoderErrorCode,
    message: string,
    readonly mnemonic: string | undefined = undefined,
    readonly operandIndex: number | undefined = undefined,
    readonly instructionIndex: number | undefined = undefined,
  ) {
    super(`${code}: ${mnemonic === undefined ? '' : `${mnemonic}: `}${message}${operandIndex === undefined ? '' : ` (operand ${operandIndex})`}${instructionIndex === undefined ? '' : ` (instruction ${instructionIndex})`}`);
  }
}
