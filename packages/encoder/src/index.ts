export * from './registers.js';
export { qword, dword, word, byte, mem, rip, isMemory, isGpr, isImmediate } from './operands.js';
export type { Immediate, Memory, MemorySpec, MemoryBuilder, Rip, RipRegister, Scale } from './operands.js';
export type { Label, ExternalSymbol, LabelPlacement, Target } from './labels.js';
export { EncoderError } from './errors.js';
export type { EncoderErrorCode } from './errors.js';
export { Assembler, nopBytes } from './assembler.js';
export type { BranchTarget, BranchOptions } from './assembler.js';
export type { EncodeOptions, EncodeResult, Relocation, RelocationType } from './encode/layout.js';
export { CONDITIONS } from './encode/conditions.js';
export type { Condition } from './encode/conditions.js';
export { relocateInstructions } from './relocate.js';
export type {
  RelocationResult, RelocationInput, RelocateOptions, InstructionMove, MovedInstruction, RefusedInstruction,
  MoveKind, CannotMoveReason,
} from './relocate.js';
