/**
 * Displacement: make room for a 5-byte `jmp rel32` over a 2-byte `syscall` by moving neighbouring
 * instructions into the site's trampoline, where they run in their original order around the
 * intercepted call.
 *
 * Never moves an instruction something may jump into: the window's first instruction may be a
 * branch target (the jmp sits there), no other may be. Branch targets come from analyzeFunction
 * (function start, direct jmp/jcc/call targets), from every entry of the jump tables a function
 * with an indirect jump addresses (over-approximated), from symbols and RELATIVE relocations
 * (RELA, and RELR whose target is the word in place), and from the landing pads of the file's
 * exception tables (where the unwinder lands).
 * Moved instructions must not be branches (their targets would need rewriting) nor syscalls; a
 * RIP-relative memory operand is re-aimed at its absolute target from the new address.
 */
import { landingPads, type ElfFile, type FunctionRange } from '@libos/elfkit';
import iced from '../iced-module.js';
import { analyzeFunction, instructionIndexAt, isBranchTarget, InstructionKind, type FunctionAnalysis } from '../analyze/analyze-function.js';
import { functionIndexOf } from '../analyze/function-index.js';
import { CODE_TABLE_SIZE, decodeInFile } from '../analyze/iced.js';
import type { Site } from '../model.js';

const { Decoder, DecoderOptions, Instruction, Formatter, FormatterSyntax } = iced;

/** An instruction moved out of the window, ready to be re-emitted at a new address. */
export interface MovedInstruction {
  va: bigint;
  bytes: Uint8Array;
  /** For a RIP-relative memory operand: where its disp32 sits in `bytes`, and the absolute address it means. */
  ripRelative?: { dispOffset: number; target: bigint };
  text: string;
}

export interface Displacement {
  windowStart: bigint;
  windowOffset: number;
  windowEnd: bigint;
  before: MovedInstruction[];
  after: MovedInstruction[];
}

const JMP_REL32 = 5;

/**
 * Table entries read per function, over all its tables. A function has as many real entries as
 * it has cases; a crafted one (100,000 `lea` of one table of 4,096 entries that all land on an
 * instruction) took minutes. Past this, every instruction of the function counts as a target.
 */
const MAX_TABLE_ENTRIES = 1 << 16;
const TOO_MANY_TABLE_ENTRIES = 'too many';
const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa];

// What jumpTableTargets looks for, per iced Code (the mnemonic depends on the Code only): asked of
// iced-x86 once per Code instead of once per instruction. 0 = not asked yet.
const TABLE_OTHER = 1;
const TABLE_LEA = 2;
/** Reads a 64-bit entry of a non-PIC table: `jmp *base(,%reg,8)`, or `mov base(,%reg,8), %reg` before a `jmp *%reg` (a computed goto). */
const TABLE_ABSOLUTE = 3;
const tableRoleByCode = new Uint8Array(CODE_TABLE_SIZE);
const MNEMONIC_LEA: number = iced.Mnemonic.Lea;
const MNEMONIC_JMP: number = iced.Mnemonic.Jmp;
const MNEMONIC_MOV: number = iced.Mnemonic.Mov;
const REGISTER_NONE: number = iced.Register.None;
const OPKIND_REGISTER: number = iced.OpKind.Register;
const OPKIND_IMMEDIATE32: number = iced.OpKind.Immediate32;
const OPKIND_IMMEDIATE32TO64: number = iced.OpKind.Immediate32to64;
const OPKIND_IMMEDIATE64: number = iced.OpKind.Immediate64;

const TWO_53 = 2n ** 53n;

/**
 * A sorted set of addresses, searched by bisection: over plain numbers when every address is
 * below 2^53 (each read of a BigUint64Array makes a bigint), else over the bigints.
 */
export class SortedAddresses {
  private readonly numbers: Float64Array | undefined;

  constructor(private readonly sorted: BigUint64Array) {
    const last = sorted.length > 0 ? sorted[sorted.length - 1]! : 0n;
    if (last < TWO_53) {
      this.numbers = new Float64Array(sorted.length);
      for (let i = 0; i < sorted.length; i++) this.numbers[i] = Number(sorted[i]!);
    }
  }

  has(va: bigint): boolean {
    const n = this.numbers;
    if (n !== undefined) {
      if (va >= TWO_53) return false; // above every address held
      const x = Number(va);
      let lo = 0;
      let hi = n.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (n[mid]! < x) lo = mid + 1;
        else hi = mid;
      }
      return lo < n.length && n[lo] === x;
    }
    const a = this.sorted;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((a[mid] as bigint) < va) lo = mid + 1;
      else hi = mid;
    }
    return lo < a.length && a[lo] === va;
  }
}

/** Caches one analysis per function across the sites of a plan. */
export class DisplacementFinder {
  private readonly analyses: Map<bigint, FunctionAnalysis>;
  private readonly tables = new Map<bigint, Set<bigint> | typeof TOO_MANY_TABLE_ENTRIES>();
  private guardedSet: SortedAddresses | undefined;
  private padSet: SortedAddresses | undefined;
  private readonly instr = new Instruction();
  /** One formatter for every moved instruction's text (Instruction.toString builds one a call). */
  private formatter: InstanceType<typeof Formatter> | undefined;

  constructor(private readonly elf: ElfFile, analyses?: Map<bigint, FunctionAnalysis>) {
    this.analyses = analyses ?? new Map();
  }

  /**
   * Where the unwinder may land when an exception passes through a function: the landing pads of
   * the file's exception tables (C++, or C built with -fexceptions: glibc has 65). Built on first use.
   */
  private get pads(): SortedAddresses {
    this.padSet ??= new SortedAddresses(BigUint64Array.from(landingPads(this.elf).pads));
    return this.padSet;
  }

  /**
   * Addresses something outside the function may reach: symbols and relocation targets (built on
   * first use). A sorted typed array, not a Set<bigint>: libc.so.6 has 4,000 of them, hashing a
   * bigint each cost more than the searches a plan makes.
   */
  private get guarded(): SortedAddresses {
    if (this.guardedSet === undefined) {
      const { symbols, dynamicSymbols, relocations } = this.elf;
      const values = new BigUint64Array(symbols.length + dynamicSymbols.length + relocations.length);
      let n = 0;
      // Indexed loops: thousands of entries, walked once while V8 still interprets this code.
      for (let i = 0; i < symbols.length; i++) if (symbols[i]!.value !== 0n) values[n++] = symbols[i]!.value;
      for (let i = 0; i < dynamicSymbols.length; i++) if (dynamicSymbols[i]!.value !== 0n) values[n++] = dynamicSymbols[i]!.value;
      // RELATIVE relocations, RELA or packed RELR (the target is then the word in place, which
      // elfkit gives as the addend): a table of label addresses (computed goto) in a PIE.
      for (let i = 0; i < relocations.length; i++) if (relocations[i]!.type === 8 /* RELATIVE */) values[n++] = BigInt.asUintN(64, relocations[i]!.addend);
      this.guardedSet = new SortedAddresses(values.subarray(0, n).sort());
    }
    return this.guardedSet;
  }

  /** The window to move for a site, or the reason there is none. */
  find(site: Site, options: { notBefore?: bigint; backs?: readonly number[] } = {}): Displacement | string {
    const index = functionIndexOf(this.elf);
    let fn = index.containing(site.va);
    let outsideTargets: Set<bigint> | undefined;
    if (fn === undefined) {
      // A short gap between two ranges (glibc's clone and clone3 end their FDE right before the
      // syscall): taken as code, as discovery does, when it decodes cleanly. Branches into it can
      // only come from the code around it: those targets are collected too.
      fn = index.gapAround(site.va, 64);
      if (fn === undefined) return 'the site is in no known function';
      outsideTargets = this.targetsInto(fn);
    }
    const analysis = this.analysisOf(fn);
    if (analysis.error !== undefined) return analysis.error.message;
    const range = fn;
    if (landingPads(this.elf).unknown.some((u) => u.start < range.end && range.start < u.end)) {
      return 'the function\'s exception table cannot be read: where it may land is unknown';
    }
    let tableTargets: Set<bigint> | undefined;
    if (analysis.hasIndirectJump) {
      let read = this.tables.get(analysis.start);
      if (read === undefined) this.tables.set(analysis.start, (read = this.jumpTableTargets(analysis)));
      if (read === TOO_MANY_TABLE_ENTRIES) return `the function's jump tables hold more entries than it can jump to (over ${MAX_TABLE_ENTRIES}): any instruction may be a target`;
      tableTargets = read;
    }
    if (outsideTargets !== undefined) tableTargets = new Set([...(tableTargets ?? []), ...outsideTargets]);
    const i = instructionIndexAt(analysis, site.va);
    if (i < 0) return 'the site is not on a decoded instruction boundary';
    if (analysis.firstInvalid >= 0 && analysis.firstInvalid <= Number(site.va - fn.start)) return 'undecodable bytes precede the site';
    const reasons: string[] = [];
    // Prefer successors (the site itself stays the window's start), then predecessors.
    for (const back of options.backs ?? [0, 1, 2, 3]) {
      const r = this.tryWindow(analysis, i, back, tableTargets);
      if (typeof r === 'string') reasons.push(r);
      else if (options.notBefore !== undefined && r.windowStart < options.notBefore) reasons.push(`the window from 0x${r.windowStart.toString(16)} overlaps the previous site's patch`);
      else return r;
    }
    return reasons[0] ?? 'no window';
  }

  private tryWindow(a: FunctionAnalysis, site: number, back: number, tableTargets: Set<bigint> | undefined): Displacement | string {
    const first = site - back;
    if (first < 0) return 'not enough instructions before the site';
    let length = 0;
    let last = first;
    for (let k = first; k < a.count; k++) {
      length += a.lengths[k]!;
      last = k;
      if (k >= site && length >= JMP_REL32) break;
    }
    if (length < JMP_REL32) return 'the function ends before 5 bytes';
    const before: MovedInstruction[] = [];
    const after: MovedInstruction[] = [];
    for (let k = first; k <= last; k++) {
      const va = a.start + BigInt(a.starts[k]!);
      if (k !== first && isBranchTarget(a, va)) return `the instruction at 0x${va.toString(16)} is a branch target`;
      if (k !== first && this.guarded.has(va)) return `the instruction at 0x${va.toString(16)} is a symbol or relocation target`;
      if (k !== first && this.pads.has(va)) return `the instruction at 0x${va.toString(16)} is an exception landing pad`;
      if (k !== first && tableTargets?.has(va)) return `the instruction at 0x${va.toString(16)} may be a jump-table target`;
      if (k === site) continue;
      const kind = a.kinds[k];
      if (kind !== InstructionKind.other && kind !== InstructionKind.nop) return `the instruction at 0x${va.toString(16)} is a branch, a system call or undecodable`;
      const moved = this.describe(a, k, va);
      if (typeof moved === 'string') return moved;
      (k < site ? before : after).push(moved);
    }
    const windowStart = a.start + BigInt(a.starts[first]!);
    return {
      windowStart,
      windowOffset: a.fileOffset + a.starts[first]!,
      windowEnd: windowStart + BigInt(length),
      before,
      after,
    };
  }

  private describe(a: FunctionAnalysis, k: number, va: bigint): MovedInstruction | string {
    const offset = a.fileOffset + a.starts[k]!;
    const bytes = this.elf.bytes.slice(offset, offset + a.lengths[k]!);
    if (ENDBR64.every((b, j) => bytes[j] === b)) return `endbr64 at 0x${va.toString(16)} must stay where it is (CET)`;
    // The instruction's length is the analysis's: a decoder over a window of the file decodes it
    // as one over just these bytes would.
    const decoder = decodeInFile(this.elf.bytes, offset, va, this.instr);
    this.formatter ??= new Formatter(FormatterSyntax.Masm);
    const text = this.formatter.format(this.instr);
    if (!this.instr.isIpRelMemoryOperand) return { va, bytes, text };
    const c = decoder.getConstantOffsets(this.instr);
    const dispOffset = c.displacementOffset;
    c.free();
    if (dispOffset === 0) return `cannot find the displacement of ${text}`;
    return { va, bytes, ripRelative: { dispOffset, target: this.instr.ipRelMemoryAddress }, text };
  }

  /**
   * Direct branch targets inside `gap` from the functions on either side of it (a gap's own
   * analysis sees only the branches within it).
   */
  private targetsInto(gap: FunctionRange): Set<bigint> {
    const targets = new Set<bigint>();
    const index = functionIndexOf(this.elf);
    for (const probe of [gap.start - 1n, gap.end]) {
      const neighbour = index.containing(probe);
      if (neighbour === undefined) continue;
      const off = this.elf.vaToOffset(neighbour.start);
      if (off === undefined) continue;
      const size = Number(neighbour.end - neighbour.start);
      const decoder = new Decoder(64, this.elf.bytes.subarray(off, off + size), DecoderOptions.None);
      decoder.ip = neighbour.start;
      try {
        while (decoder.canDecode) {
          decoder.decodeOut(this.instr);
          const t = this.instr.nearBranchTarget;
          if (t !== 0n && t >= gap.start && t < gap.end) targets.add(t);
        }
      } finally {
        decoder.free();
      }
    }
    return targets;
  }

  /**
   * Where a function's indirect jumps may land, over-approximated: every entry of every table the
   * function addresses. PIC tables are int32 offsets from a base the code takes with
   * `lea base(%rip)`; non-PIC ones are 64-bit addresses read by `jmp *base(,%reg,8)`, or by
   * `mov base(,%reg,8), %reg` and a later `jmp *%reg` (GCC's computed goto, `goto *tbl[i]`). Entries
   * are read while they land on an instruction boundary inside the function.
   */
  private jumpTableTargets(a: FunctionAnalysis): Set<bigint> | typeof TOO_MANY_TABLE_ENTRIES {
    const targets = new Set<bigint>();
    if (a.fileOffset < 0) return targets;
    const size = Number(a.end - a.start);
    const decoder = new Decoder(64, this.elf.bytes.subarray(a.fileOffset, a.fileOffset + size), DecoderOptions.None);
    decoder.ip = a.start;
    // Each table once, however many instructions address it.
    const bases = new Map<string, { va: bigint; width: 4 | 8 }>();
    const addBase = (va: bigint, width: 4 | 8): void => {
      bases.set(`${va}:${width}`, { va, width });
    };
    const instr = this.instr;
    try {
      // The same bytes from the same start as the analysis: the same a.count instructions.
      for (let k = 0; k < a.count; k++) {
        decoder.decodeOut(instr);
        const code = instr.code;
        // Codes past the table (a later iced-x86) are asked each time.
        let role = code < CODE_TABLE_SIZE ? tableRoleByCode[code]! : 0;
        if (role === 0) {
          const mnemonic = instr.mnemonic;
          role = mnemonic === MNEMONIC_LEA ? TABLE_LEA : mnemonic === MNEMONIC_JMP || mnemonic === MNEMONIC_MOV ? TABLE_ABSOLUTE : TABLE_OTHER;
          tableRoleByCode[code] = role;
        }
        if (role === TABLE_LEA) {
          if (instr.isIpRelMemoryOperand) addBase(instr.ipRelMemoryAddress, 4);
        } else if (role === TABLE_ABSOLUTE) {
          if (instr.memoryBase === REGISTER_NONE && instr.memoryIndexScale === 8 && instr.memoryIndex !== REGISTER_NONE) {
            addBase(instr.memoryDisplacement, 8);
          } else if (instr.op0Kind === OPKIND_REGISTER) {
            // `mov $tbl, %edx` (or movabs), for a later `jmp *(%rdx,%rax,8)` or `mov (%rdx,%rax,8), %rax;
            // jmp *%rax`: every immediate that may be an address is taken as a table of 64-bit
            // entries (a constant that is none reads no entry).
            const kind = instr.op1Kind;
            const value = kind === OPKIND_IMMEDIATE32 ? BigInt(instr.immediate32 >>> 0)
              : kind === OPKIND_IMMEDIATE32TO64 ? BigInt.asUintN(64, instr.immediate32to64)
              : kind === OPKIND_IMMEDIATE64 ? instr.immediate64 : 0n;
            if (value !== 0n) addBase(value, 8);
          }
        }
      }
    } finally {
      decoder.free();
    }
    let budget = MAX_TABLE_ENTRIES;
    for (const base of bases.values()) {
      for (let n = 0; n < 4096; n++) {
        if (budget-- <= 0) return TOO_MANY_TABLE_ENTRIES;
        const entryVa = base.va + BigInt(n * base.width);
        const off = this.elf.vaToOffset(entryVa);
        if (off === undefined || off + base.width > this.elf.bytes.length) break;
        const view = new DataView(this.elf.bytes.buffer, this.elf.bytes.byteOffset + off, base.width);
        const target = base.width === 4 ? base.va + BigInt(view.getInt32(0, true)) : view.getBigUint64(0, true);
        // An instruction boundary of the function: the analysis's own (sorted) starts answer that,
        // no set of every boundary per function (a function over a whole .text made one per site).
        if (instructionIndexAt(a, target) < 0) break;
        targets.add(target);
      }
    }
    return targets;
  }

  /** The analysis of the function that starts at `start`, if one was made already (none is made here). */
  cachedAnalysis(start: bigint): FunctionAnalysis | undefined {
    return this.analyses.get(start);
  }

  private analysisOf(fn: FunctionRange): FunctionAnalysis {
    let a = this.analyses.get(fn.start);
    if (a === undefined) {
      a = analyzeFunction(this.elf, fn);
      this.analyses.set(fn.start, a);
    }
    return a;
  }
}

/** Re-emits a moved instruction at the assembler's position, re-aiming a RIP-relative operand. */
export function emitMoved(a: import('@libos/encoder').Assembler, m: MovedInstruction): void {
  if (m.ripRelative === undefined) {
    a.bytes(m.bytes);
    return;
  }
  const { dispOffset, target } = m.ripRelative;
  // A rel32 field holds target + addend - its own address; the CPU adds the disp32 to the end of
  // the instruction, which lies (length - dispOffset) bytes past the field.
  a.bytes(m.bytes.subarray(0, dispOffset));
  a.rel32(target, -(m.bytes.length - dispOffset));
  a.bytes(m.bytes.subarray(dispOffset + 4));
}
