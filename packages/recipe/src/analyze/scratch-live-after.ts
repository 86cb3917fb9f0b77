import type { ElfFile, FunctionRange } from '@libos/elfkit';
import { syscallArgumentCount } from '../syscalls/x86-64.js';
import { functionAfterSite } from './function-index.js';
import { immediateToEax } from './syscall-number.js';
import {
  Code, FlowControl, IP_BASE, InstructionInfoOptions, OpAccess, OpKind, RAX_PARTS, READ_ACCESSES, Register, functionDecoder, flowOf, hex,
  LEGACY_PREFIX, instructionInfoFactory, mnemonicName, scratch, seekDecoder, type IcedInstruction, type InstructionInfoFactory,
} from './iced.js';

/**
 * The registers a C handler may change (SysV caller-saved) that `syscall` keeps, one bit each, in
 * the order of the syscall's arguments: rdi, rsi, rdx, r10, r8, r9.
 */
export const ScratchRegister = { rdi: 1, rsi: 2, rdx: 4, r10: 8, r8: 16, r9: 32 } as const;
/** All six: what a stub saves around a C handler when nothing is known of the code after the site. */
export const ALL_SCRATCH = 0x3f;

/** Which of the six the program can still read after a site, and what decided it. */
export interface ScratchLiveness {
  /** Bits of {@link ScratchRegister}. */
  live: number;
  reason: string;
}

export interface ScratchLiveOptions {
  /** The function that holds `va`; looked up in `elf.functions()` when absent. */
  function?: FunctionRange;
  /** Instructions to decode over all paths before giving up (the undecided then count as live). Default 64. */
  maxInstructions?: number;
}

/** The syscall argument registers, in order, as bits. */
const ARGUMENT_BITS = [ScratchRegister.rdi, ScratchRegister.rsi, ScratchRegister.rdx, ScratchRegister.r10, ScratchRegister.r8, ScratchRegister.r9];

/** Each of the six, every width, and whether that width's write replaces the whole register. */
const PARTS = new Map<number, { bit: number; whole: boolean }>();
for (const [bit, q, d, w, b] of [
  [ScratchRegister.rdi, Register.RDI, Register.EDI, Register.DI, Register.DIL],
  [ScratchRegister.rsi, Register.RSI, Register.ESI, Register.SI, Register.SIL],
  [ScratchRegister.rdx, Register.RDX, Register.EDX, Register.DX, Register.DL],
  [ScratchRegister.r10, Register.R10, Register.R10D, Register.R10W, Register.R10L],
  [ScratchRegister.r8, Register.R8, Register.R8D, Register.R8W, Register.R8L],
  [ScratchRegister.r9, Register.R9, Register.R9D, Register.R9W, Register.R9L],
] as const) {
  PARTS.set(q, { bit, whole: true });
  PARTS.set(d, { bit, whole: true }); // a 32-bit write zero-extends: whole
  PARTS.set(w, { bit, whole: false });
  PARTS.set(b, { bit, whole: false });
}
PARTS.set(Register.DH, { bit: ScratchRegister.rdx, whole: false });

/** A path still to follow: where it goes on, the registers still undecided on it, the number in eax if known. */
interface PathState { position: number; pending: number; nr: number | undefined }

/**
 * Which of rdi, rsi, rdx, r10, r8 and r9 the program can read after a site (`va`: the first byte
 * after its room) before it writes them, so that a stub calling a C handler saves only those.
 * Follows every path inside the function, as r11LiveAfter does: a register is dead on a path only
 * where it is written whole before anything reads it. A `call` reads all six (arguments, r10 the
 * static chain), and so does `ret`: the SysV ABI would let the caller lose them, but GCC's
 * interprocedural register allocation (-fipa-ra, on at -O2) keeps values in the caller-saved
 * registers a callee it can see never writes. A later `syscall` reads its arguments: as many as its
 * number takes where a `mov $nr,%eax` on the path gives the number, all six otherwise. Undecided
 * registers are live on an indirect branch, a jump out of the function, undecodable bytes, or when
 * the budget runs out: only a proof makes a register dead.
 */
export function scratchLiveAfter(elf: Pick<ElfFile, 'bytes' | 'vaToOffset' | 'functions'>, va: bigint, options: ScratchLiveOptions = {}): ScratchLiveness {
  const code = functionAfterSite(elf, va, options.function);
  if ('reason' in code) return { live: ALL_SCRATCH, reason: code.reason };
  const { fn, size, fileOffset } = code;
  let budget = options.maxInstructions ?? 64;
  let live = 0;
  const why: string[] = [];
  const decide = (bits: number, reason: string): void => {
    if ((bits & ~live) !== 0) why.push(`${scratchNames(bits & ~live)}: ${reason}`);
    live |= bits;
  };
  // Registers already followed from a position with a given number in eax: a path that arrives
  // again with nothing new stops there.
  const followed = new Map<string, number>();
  const work: PathState[] = [{ position: Number(va - fn.start), pending: ALL_SCRATCH, nr: undefined }];
  const decoder = functionDecoder(elf.bytes, fileOffset, size);
  // Addresses are formatted only for a reason, not for every instruction decoded.
  const where = (p: number): string => hex(fn.start + BigInt(p));
  const factory = instructionInfoFactory();
  while (work.length > 0) {
    let { position, pending, nr } = work.pop() as PathState;
    for (;;) {
      const key = `${position}:${nr ?? ''}`;
      const seen = followed.get(key) ?? 0;
      pending &= ~seen;
      if (pending === 0 || (live | pending) === live) break;
      followed.set(key, seen | pending);
      if (position >= size) { decide(pending, `runs out of the function at ${where(position)}`); break; }
      if (budget-- <= 0) { decide(pending, 'no decision within the instruction budget'); break; }
      seekDecoder(decoder, position);
      const instr = scratch;
      decoder.decodeOut(instr);
      const c = instr.code;
      if (c === Code.INVALID) { decide(pending, `undecodable bytes at ${where(position)}`); break; }
      if (position + instr.length > size) { decide(pending, `${mnemonicName(instr)} at ${where(position)} crosses the end of the function`); break; }
      if (c === Code.Syscall) {
        const count = nr === undefined ? 6 : syscallArgumentCount(nr);
        let args = 0;
        for (let i = 0; i < count; i++) args |= ARGUMENT_BITS[i]!;
        if ((pending & args) !== 0) decide(pending & args, `read by the syscall at ${where(position)}${nr === undefined ? ' (number unknown)' : ` (${nr}, ${count} arguments)`}`);
        pending &= ~args;
        nr = undefined; // rax holds the result now
        position += instr.length;
        continue;
      }
      // Register use, implicit operands included (string instructions, mul/div, cqo, cpuid...).
      const memoryBase = instr.memoryBase;
      const memoryIndex = instr.memoryIndex;
      const use = registerUse(instr, c, memoryBase, memoryIndex, elf.bytes, fileOffset + position, factory);
      let reads = use.reads;
      const { writes, raxWritten } = use;
      // Address registers of memory operands are read (NoMemoryUsage leaves them to the operands).
      const base = PARTS.get(memoryBase);
      const index = PARTS.get(memoryIndex);
      if (base !== undefined) reads |= base.bit;
      if (index !== undefined) reads |= index.bit;
      if ((pending & reads) !== 0) decide(pending & reads, `read by ${mnemonicName(instr)} at ${where(position)}`);
      pending &= ~reads & ~writes;
      if (raxWritten) nr = immediateToEax(instr, c);
      if (pending === 0) break;
      const flow = flowOf(instr, c);
      if (flow === FlowControl.Next) {
        position += instr.length;
        continue;
      }
      if (flow === FlowControl.Return) {
        // Not dead at a return, although the SysV ABI lets a callee change them all: GCC's
        // -fipa-ra (on at -O2) keeps a caller's values in the caller-saved registers a callee it
        // can see never writes, and a syscall wrapper writes none of these.
        decide(pending, `the caller may keep a value in it across the call (GCC's -fipa-ra), at ${mnemonicName(instr)} ${where(position)}`);
        break;
      }
      if (flow === FlowControl.Call || flow === FlowControl.IndirectCall) {
        decide(pending, `arguments of the ${mnemonicName(instr)} at ${where(position)}`);
        break;
      }
      if (flow === FlowControl.UnconditionalBranch || flow === FlowControl.ConditionalBranch) {
        const target = instr.op0Kind === OpKind.NearBranch64 ? ((instr.nearBranch32 >>> 0) - IP_BASE) | 0 : -1;
        if (target < 0 || target >= size) { decide(pending, `${mnemonicName(instr)} at ${where(position)} leaves the function`); break; }
        work.push({ position: target, pending, nr });
        if (flow === FlowControl.ConditionalBranch) {
          position += instr.length;
          continue;
        }
        break;
      }
      decide(pending, `${mnemonicName(instr)} at ${where(position)} changes control flow`);
      break;
    }
  }
  const dead = ALL_SCRATCH & ~live;
  return { live, reason: dead === 0 ? `all live (${why.join('; ')})` : `${scratchNames(dead)} dead${why.length > 0 ? `; ${why.join('; ')}` : ''}` };
}

/** What an instruction does to the six and to rax, as InstructionInfo tells it. */
interface RegisterUse { reads: number; writes: number; raxWritten: boolean }

// What InstructionInfo says of the registers depends on the Code, the operands (kinds and
// registers), the address registers and the rep prefixes only, never on an immediate or a
// displacement: its answer is kept under that key. Asking costs a score of calls into iced-x86 an
// instruction, and the same instructions come back at every site of a file.
const registerUseCache = new Map<string, RegisterUse>();

function registerUse(
  instr: IcedInstruction, code: number, memoryBase: number, memoryIndex: number, bytes: Uint8Array, at: number,
  factory: InstanceType<typeof InstructionInfoFactory>,
): RegisterUse {
  let key = `${code}|${memoryBase}|${memoryIndex}|${repPrefixes(bytes, at, instr.length)}`;
  const count = instr.opCount;
  for (let i = 0; i < count; i++) {
    const kind = instr.opKind(i);
    key += kind === OpKind.Register ? `|r${instr.opRegister(i)}` : `|${kind}`;
  }
  const known = registerUseCache.get(key);
  if (known !== undefined) return known;
  const info = factory.infoOptions(instr, InstructionInfoOptions.NoMemoryUsage);
  let reads = 0;
  let writes = 0;
  let raxWritten = false;
  try {
    for (const used of info.usedRegisters()) {
      const r = used.register;
      const part = PARTS.get(r);
      if (part !== undefined) {
        if (READ_ACCESSES.has(used.access)) reads |= part.bit;
        else if (used.access === OpAccess.Write && part.whole) writes |= part.bit;
        else if (used.access !== OpAccess.NoMemAccess && used.access !== OpAccess.None) reads |= part.bit; // a partial or conditional write keeps the rest
      } else if (RAX_PARTS.has(r) && used.access !== OpAccess.Read && used.access !== OpAccess.CondRead) {
        raxWritten = true;
      }
      used.free();
    }
  } finally {
    info.free();
  }
  const use = { reads, writes, raxWritten };
  registerUseCache.set(key, use);
  return use;
}

/** The F2/F3 prefixes among an instruction's legacy prefixes, as bits (rep/repne change what a string instruction uses). */
function repPrefixes(bytes: Uint8Array, at: number, length: number): number {
  let bits = 0;
  for (let i = at; i < at + length; i++) {
    const b = bytes[i] as number;
    if (LEGACY_PREFIX[b] !== 1) break;
    if (b === 0xf2) bits |= 1;
    else if (b === 0xf3) bits |= 2;
  }
  return bits;
}

const NAMES: [number, string][] = [[ScratchRegister.rdi, 'rdi'], [ScratchRegister.rsi, 'rsi'], [ScratchRegister.rdx, 'rdx'], [ScratchRegister.r10, 'r10'], [ScratchRegister.r8, 'r8'], [ScratchRegister.r9, 'r9']];

/** `rdi, r8` for the bits of {@link ScratchRegister} in `bits`. */
export function scratchNames(bits: number): string {
  return NAMES.filter(([b]) => (bits & b) !== 0).map(([, n]) => n).join(', ');
}
