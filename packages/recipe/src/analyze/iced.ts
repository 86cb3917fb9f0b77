/**
 * The one place that loads iced-x86 (CJS, wasm loaded synchronously) and the scratch objects the
 * analyses share. Everything here runs synchronously, so one reused Instruction is safe and saves a
 * wasm allocation per decoded instruction.
 */
import iced from '../iced-module.js';

export const {
  Code,
  Decoder,
  DecoderOptions,
  FlowControl,
  Instruction,
  InstructionInfoFactory,
  InstructionInfoOptions,
  Mnemonic,
  OpAccess,
  OpKind,
  Register,
  RflagsBits,
} = iced;

export type IcedDecoder = InstanceType<typeof Decoder>;
export type IcedInstruction = InstanceType<typeof Instruction>;

/** OF SF ZF AF PF CF: the flags `lahf`/`seto` keep and compiled code tests. */
export const ARITHMETIC_FLAGS =
  RflagsBits.OF | RflagsBits.SF | RflagsBits.ZF | RflagsBits.AF | RflagsBits.PF | RflagsBits.CF;

/**
 * Decoders run with ip = IP_BASE + offset in the function so that branch targets can be read as
 * 32-bit numbers (`nearBranch32`) instead of a bigint per branch; functions are far below 1 GiB, so
 * any target outside the function lands outside [0, size) after subtracting the base.
 */
export const IP_BASE = 0x4000_0000;

/** Shared scratch instruction: decode into it with `decoder.decodeOut(scratch)`, never keep it. */
export const scratch: IcedInstruction = new Instruction();

let infoFactory: InstanceType<typeof InstructionInfoFactory> | undefined;

/** The shared InstructionInfoFactory (register usage), created on first use. */
export function instructionInfoFactory(): InstanceType<typeof InstructionInfoFactory> {
  infoFactory ??= new InstructionInfoFactory();
  return infoFactory;
}

/** A 64-bit decoder over `bytes` whose ip is IP_BASE + position. Free it when done. */
export function createDecoder(bytes: Uint8Array): IcedDecoder {
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = BigInt(IP_BASE);
  return decoder;
}

let shared: { bytes: Uint8Array; offset: number; size: number; decoder: IcedDecoder } | undefined;

/**
 * A decoder over bytes[offset, offset + size) (a function), ip = IP_BASE + position, shared by the
 * analyses of that function's sites: an iced Decoder copies its bytes into wasm memory, and one
 * per site made a function of 100,000 sites cost sites x its size. Every caller seeks before it
 * decodes and runs to its end synchronously; none may free it (the next function's replaces it).
 */
export function functionDecoder(bytes: Uint8Array, offset: number, size: number): IcedDecoder {
  if (shared !== undefined && shared.bytes === bytes && shared.offset === offset && shared.size === size) return shared.decoder;
  shared?.decoder.free();
  shared = undefined;
  const decoder = createDecoder(bytes.subarray(offset, offset + size));
  shared = { bytes, offset, size, decoder };
  return decoder;
}

/**
 * Frees the decoders the analyses share across calls (r11LiveAfter, flagsLiveAfter,
 * scratchLiveAfter, findSyscallNumber, a moved instruction's description) and lets go of the file
 * they hold. findSites and planPatches call it when they end; a program that calls the analyses
 * itself may call it when it is done with a file.
 */
export function releaseSharedDecoders(): void {
  shared?.decoder.free();
  shared = undefined;
  window?.decoder.free();
  window = undefined;
}

/** The longest x86 instruction. */
const MAX_INSTRUCTION = 15;
/** Bytes a window decoder holds: sites come in address order, so one window serves many. */
const WINDOW = 64 * 1024;

let window: { bytes: Uint8Array; start: number; end: number; decoder: IcedDecoder } | undefined;

/**
 * Decodes the instruction at file offset `offset` of `bytes` into `out` (ip = `ip`) and returns
 * the decoder (for getConstantOffsets). For an instruction whose length the caller already knows
 * to lie within its code: a decoder over a 64 KiB window of the file, kept and moved as the
 * offsets move, decodes it as one over just its function would, without a new decoder (a copy of
 * the bytes into wasm) a call. Every caller decodes and reads synchronously; none may free it.
 */
export function decodeInFile(bytes: Uint8Array, offset: number, ip: bigint, out: IcedInstruction = scratch): IcedDecoder {
  let w = window;
  if (w === undefined || w.bytes !== bytes || offset < w.start || (offset + MAX_INSTRUCTION > w.end && w.end < bytes.length)) {
    w?.decoder.free();
    window = undefined;
    const end = Math.min(bytes.length, offset + WINDOW);
    w = { bytes, start: offset, end, decoder: new Decoder(64, bytes.subarray(offset, end), DecoderOptions.None) };
    window = w;
  }
  w.decoder.position = offset - w.start;
  w.decoder.ip = ip;
  w.decoder.decodeOut(out);
  return w.decoder;
}

/** Moves `decoder` to `position` and keeps ip = IP_BASE + position. */
export function seekDecoder(decoder: IcedDecoder, position: number): void {
  decoder.position = position;
  decoder.ip = BigInt(IP_BASE + position);
}

// Per-Code facts, filled lazily: FlowControl and "is a NOP" depend on the Code only, and asking the
// wasm side once per Code instead of once per instruction halves the calls in the decode loop.
// Sized for every Code value (iced-x86 1.21 has 4,936; a later one's beyond it are asked each time,
// not cached): counting the enum's 9,872 keys cost 1 ms of every start.
export const CODE_TABLE_SIZE = 8192;
const codeFacts = new Int16Array(CODE_TABLE_SIZE).fill(-1);
/** Set in {@link codeFactsOf}'s answer when the instruction is a NOP; the low byte is its FlowControl. */
export const NOP_BIT = 0x100;
const MNEMONIC_NOP: number = Mnemonic.Nop;

/**
 * FlowControl | (NOP_BIT if a NOP) of the decoded `instr` whose code is `code`, asked of iced-x86
 * once per Code. For decode loops that want both facts with one call.
 */
export function codeFactsOf(instr: IcedInstruction, code: number): number {
  let facts = codeFacts[code] ?? -1;
  if (facts < 0) {
    facts = instr.flowControl | (instr.mnemonic === MNEMONIC_NOP ? NOP_BIT : 0);
    if (code < codeFacts.length) codeFacts[code] = facts;
  }
  return facts;
}

/** FlowControl of the decoded `instr` whose code is `code`. */
export function flowOf(instr: IcedInstruction, code: number): number {
  return codeFactsOf(instr, code) & 0xff;
}

/** Whether the decoded `instr` (code `code`) is a NOP (`nop`, `nopw ...`, `xchg %ax,%ax`). */
export function isNop(instr: IcedInstruction, code: number): boolean {
  return (codeFactsOf(instr, code) & NOP_BIT) !== 0;
}

/** Lower-case mnemonic of the decoded `instr`, for messages. */
export function mnemonicName(instr: IcedInstruction): string {
  return (Mnemonic[instr.mnemonic] ?? 'unknown').toLowerCase();
}

/** Accesses of iced-x86's UsedRegister that read the register. */
export const READ_ACCESSES: ReadonlySet<number> = new Set<number>([OpAccess.Read, OpAccess.CondRead, OpAccess.ReadWrite, OpAccess.ReadCondWrite]);
/** Accesses of iced-x86's UsedRegister that write the register, even conditionally. */
export const WRITE_ACCESSES: ReadonlySet<number> = new Set<number>([OpAccess.Write, OpAccess.CondWrite, OpAccess.ReadWrite, OpAccess.ReadCondWrite]);
/** rax at every width. */
export const RAX_PARTS: ReadonlySet<number> = new Set<number>([Register.RAX, Register.EAX, Register.AX, Register.AL, Register.AH]);

/** 1 at each legacy prefix byte (segment, operand and address size, lock, rep/repne). */
export const LEGACY_PREFIX = new Uint8Array(256);
for (const p of [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]) LEGACY_PREFIX[p] = 1;

/** `0x401234` */
export function hex(va: bigint | number): string {
  return `0x${va.toString(16)}`;
}
