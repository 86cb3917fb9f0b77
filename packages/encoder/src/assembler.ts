import { EncoderError } from './errors.js';
import { createLabel, createSymbol, isLabel, isSymbol, type ExternalSymbol, type Label, type Target } from './labels.js';
import { isGpr, isMemory, type Immediate, type Memory } from './operands.js';
import type { Gpr } from './registers.js';
import { ALU, encodeAlu, encodeCmovcc, encodeImul, encodeSetcc, encodeShift, encodeTest, encodeUnary, SHIFT, UNARY, type AluOp, type ShiftOp, type UnaryOp } from './encode/arithmetic.js';
import { CONDITIONS, CONDITION_NAMES, type Condition } from './encode/conditions.js';
import { encodeExtend, encodeLea, encodeMov, encodeMovsxd, encodePop, encodePush, encodeXchg } from './encode/data-moves.js';
import { immediateValue, truncateSigned, writeLe } from './encode/immediate.js';
import { encodeInstruction, rawItem } from './encode/instruction.js';
import type { FixedItem, Fixup, Item } from './encode/item.js';
import { layout, type EncodeOptions, type EncodeResult } from './encode/layout.js';
import { NOPS, writeNops } from './encode/nops.js';
import { planMovedItems, type RelocateOptions, type RelocationInput } from './relocate.js';
import { expectMemory, expectRm, immediateRange, sizeMismatch, type Operand, type Site } from './encode/operand-checks.js';

/** A direct branch target: a label, an external symbol, or an absolute virtual address. */
export type BranchTarget = Target | number;

/** Options of a direct branch. */
export interface BranchOptions {
  /** Always use rel32, even when rel8 would reach. */
  readonly near?: boolean;
}

type JccMethods = { [K in Condition as `j${K}`]: (target: BranchTarget, options?: BranchOptions) => Assembler };
type SetccMethods = { [K in Condition as `set${K}`]: (dst: Gpr | Memory) => Assembler };
type CmovccMethods = { [K in Condition as `cmov${K}`]: (dst: Gpr, src: Gpr | Memory) => Assembler };
/** Two-operand shapes: a memory destination takes a register or an immediate, never memory. */
interface TwoOperandForms {
  (dst: Gpr, src: Gpr | Memory | Immediate): Assembler;
  (dst: Memory, src: Gpr | Immediate): Assembler;
}
type AluMethods = { [K in AluOp]: TwoOperandForms };
type ShiftMethods = { [K in ShiftOp]: (dst: Gpr | Memory, count: Gpr | Immediate) => Assembler };
type UnaryMethods = { [K in Exclude<UnaryOp, 'imul'>]: (dst: Gpr | Memory) => Assembler };

// Merged into the class below: one method per mnemonic, generated from the tables.
export interface Assembler extends JccMethods, SetccMethods, CmovccMethods, AluMethods, ShiftMethods, UnaryMethods {}

/**
 * A typed x86-64 assembler in the asmjit/iced manner: one method per mnemonic, overloaded by
 * operand shape, operands in Intel order (destination first). Methods validate their operands
 * at once and throw EncoderError; nothing is appended when they throw. `encode()` lays the code
 * out at an address, relaxes branches and resolves labels.
 *
 * @example
 * const a = new Assembler();
 * const back = a.label();
 * a.lea(rcx, rip(back));
 * a.jmp(a.symbol('syscall_func'));
 * a.bind(back);
 * const { bytes, relocations } = a.encode({ va: 0x401000n });
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Assembler {
  private readonly items: Item[] = [];
  private readonly allLabels: Label[] = [];
  private readonly boundLabels = new Set<number>();
  private count = 0;
  private readonly owner = {};

  /** Number of instructions and data directives emitted so far (the next instruction's index). */
  get instructionCount(): number {
    return this.count;
  }

  /** A new, unbound label. */
  label(name?: string): Label {
    const label = createLabel(this.owner, this.allLabels.length, name);
    this.allLabels.push(label);
    return label;
  }

  /** Places `label` at the current position. */
  bind(label: Label): this {
    this.checkLabel(label, 'bind');
    if (this.boundLabels.has(label.id)) {
      throw new EncoderError('ENC_LABEL_REBOUND', `label ${label.name ?? `#${label.id}`} is already bound`, 'bind', 0, this.count);
    }
    this.boundLabels.add(label.id);
    this.items.push({ kind: 'bind', label });
    return this;
  }

  /** An external symbol, left as a relocation unless `encode({ symbols })` gives its address. */
  symbol(name: string): ExternalSymbol {
    return createSymbol(name);
  }

  /** Lays the code out at `options.va`. Does not change the assembler; may be called again. */
  encode(options: EncodeOptions): EncodeResult {
    return layout(this.items, this.allLabels, this.count, options);
  }

  // ---- data moves

  mov(dst: Gpr, src: Gpr | Memory | Immediate): this;
  mov(dst: Memory, src: Gpr | Immediate): this;
  mov(dst: Gpr | Memory, src: Gpr | Memory | Immediate): this {
    return this.pushFixed(encodeMov(this.site('mov', dst, src), dst, src));
  }
  /** mov r64, imm64 (always the 10-byte form). */
  movabs(dst: Gpr, src: Immediate): this {
    return this.emit('movabs', (site) => {
      if (!isGpr(dst) || dst.size !== 64) throw sizeMismatch(site, 0, 'movabs takes a 64-bit register');
      const v = immediateValue(src, site.mnemonic, 1, site.index);
      const value = truncateSigned(v, 64);
      if (value === undefined) throw immediateRange(site, 1, v, 64);
      return encodeInstruction(site, { opsize: 64, opcode: [0xb8], opreg: { reg: dst, operand: 0 }, imm: { value, size: 8 } });
    }, src);
  }
  movzx(dst: Gpr, src: Gpr | Memory): this {
    return this.pushFixed(encodeExtend(this.site('movzx', dst, src), false, dst, src));
  }
  movsx(dst: Gpr, src: Gpr | Memory): this {
    return this.pushFixed(encodeExtend(this.site('movsx', dst, src), true, dst, src));
  }
  movsxd(dst: Gpr, src: Gpr | Memory): this {
    return this.pushFixed(encodeMovsxd(this.site('movsxd', dst, src), dst, src));
  }
  lea(dst: Gpr, src: Memory): this {
    return this.pushFixed(encodeLea(this.site('lea', dst, src), dst, src));
  }
  xchg(a: Gpr, b: Gpr | Memory): this;
  xchg(a: Memory, b: Gpr): this;
  xchg(a: Gpr | Memory, b: Gpr | Memory): this {
    return this.pushFixed(encodeXchg(this.site('xchg', a, b), a, b));
  }
  push(src: Gpr | Memory | Immediate): this {
    return this.pushFixed(encodePush(this.site('push', src), src));
  }
  pop(dst: Gpr | Memory): this {
    return this.pushFixed(encodePop(this.site('pop', dst), dst));
  }

  // ---- arithmetic (add..cmp, shifts and inc..idiv are generated below)

  test(dst: Gpr, src: Gpr | Memory | Immediate): this;
  test(dst: Memory, src: Gpr | Immediate): this;
  test(dst: Gpr | Memory, src: Gpr | Memory | Immediate): this {
    return this.pushFixed(encodeTest(this.site('test', dst, src), dst, src));
  }
  /** imul r/m | imul r, r/m | imul r, imm | imul r, r/m, imm. */
  imul(a: Gpr | Memory, b?: Gpr | Memory | Immediate, c?: Immediate): this {
    return this.pushFixed(encodeImul(this.site('imul', a, b), a, b, c));
  }
  /** setcc with the condition as a value (`a.setcc('o', al)`). */
  setcc(cc: Condition, dst: Gpr | Memory): this {
    return this.pushFixed(encodeSetcc(this.site(`set${cc}`, dst), CONDITIONS[cc], dst));
  }
  /** cmovcc with the condition as a value. */
  cmovcc(cc: Condition, dst: Gpr, src: Gpr | Memory): this {
    return this.pushFixed(encodeCmovcc(this.site(`cmov${cc}`, dst, src), CONDITIONS[cc], dst, src));
  }

  // ---- control flow

  /**
   * jmp to a label, symbol or absolute address (rel8/rel32, relaxed at encode time; symbols are
   * always rel32), or indirect through a 64-bit register or memory (`jmp qword [rip+0]`).
   */
  jmp(target: BranchTarget | Gpr | Memory, options?: BranchOptions): this {
    return this.controlTransfer('jmp', 4, target, options);
  }
  /** call rel32 to a label, symbol or address, or indirect through a register or memory. */
  call(target: BranchTarget | Gpr | Memory): this {
    return this.controlTransfer('call', 2, target, undefined);
  }
  /** jcc with the condition as a value (`a.jcc('e', label)`). */
  jcc(cc: Condition, target: BranchTarget, options?: BranchOptions): this {
    const index = this.count;
    const t = this.directTarget(`j${cc}`, target, index);
    this.items.push({ kind: 'branch', op: 'jcc', cc: CONDITIONS[cc], target: t, mnemonic: `j${cc}`, index, near: options?.near === true });
    this.count++;
    return this;
  }
  /** ret, or ret imm16. */
  ret(pop?: Immediate): this {
    if (pop === undefined) return this.fixedBytes('ret', [0xc3]);
    return this.emit('ret', (site) => {
      const v = immediateValue(pop, site.mnemonic, 0, site.index);
      if (v < 0n || v > 0xffffn) throw immediateRange(site, 0, v, 16);
      return encodeInstruction(site, { opcode: [0xc2], imm: { value: v, size: 2 } });
    }, pop);
  }
  /** int n (cd ib). `int(3)` is `cc`, as GNU as encodes `int 3`. */
  int(n: Immediate): this {
    return this.emit('int', (site) => {
      const v = immediateValue(n, site.mnemonic, 0, site.index);
      if (v < 0n || v > 255n) throw immediateRange(site, 0, v, 8);
      if (v === 3n) return rawItem('int', site.index, [0xcc]);
      return encodeInstruction(site, { opcode: [0xcd], imm: { value: v, size: 1 } });
    }, n);
  }

  // ---- operand-less instructions

  syscall(): this { return this.fixedBytes('syscall', [0x0f, 0x05]); }
  sysenter(): this { return this.fixedBytes('sysenter', [0x0f, 0x34]); }
  int3(): this { return this.fixedBytes('int3', [0xcc]); }
  ud2(): this { return this.fixedBytes('ud2', [0x0f, 0x0b]); }
  hlt(): this { return this.fixedBytes('hlt', [0xf4]); }
  cpuid(): this { return this.fixedBytes('cpuid', [0x0f, 0xa2]); }
  rdtsc(): this { return this.fixedBytes('rdtsc', [0x0f, 0x31]); }
  rdtscp(): this { return this.fixedBytes('rdtscp', [0x0f, 0x01, 0xf9]); }
  pushfq(): this { return this.fixedBytes('pushfq', [0x9c]); }
  popfq(): this { return this.fixedBytes('popfq', [0x9d]); }
  lahf(): this { return this.fixedBytes('lahf', [0x9f]); }
  sahf(): this { return this.fixedBytes('sahf', [0x9e]); }
  leave(): this { return this.fixedBytes('leave', [0xc9]); }
  cqo(): this { return this.fixedBytes('cqo', [0x48, 0x99]); }
  cdqe(): this { return this.fixedBytes('cdqe', [0x48, 0x98]); }
  cld(): this { return this.fixedBytes('cld', [0xfc]); }
  std(): this { return this.fixedBytes('std', [0xfd]); }
  pause(): this { return this.fixedBytes('pause', [0xf3, 0x90]); }
  mfence(): this { return this.fixedBytes('mfence', [0x0f, 0xae, 0xf0]); }
  lfence(): this { return this.fixedBytes('lfence', [0x0f, 0xae, 0xe8]); }
  sfence(): this { return this.fixedBytes('sfence', [0x0f, 0xae, 0xf8]); }

  /** A NOP of n bytes (default 1), composed as GNU as composes `.nops n`. */
  nop(n = 1): this {
    if (!Number.isInteger(n) || n < 1) {
      throw new EncoderError('ENC_INVALID_ALIGNMENT', `a NOP of ${n} bytes`, 'nop', 0, this.count);
    }
    const bytes = new Uint8Array(n);
    writeNops(bytes, 0, n);
    return this.pushFixed({ kind: 'fixed', bytes, fixups: [], mnemonic: 'nop', index: this.count });
  }

  // ---- processor state

  xsave(dst: Memory): this { return this.stateOp('xsave', 4, false, dst); }
  xsave64(dst: Memory): this { return this.stateOp('xsave64', 4, true, dst); }
  xrstor(src: Memory): this { return this.stateOp('xrstor', 5, false, src); }
  xrstor64(src: Memory): this { return this.stateOp('xrstor64', 5, true, src); }
  fxsave(dst: Memory): this { return this.stateOp('fxsave', 0, false, dst); }
  fxsave64(dst: Memory): this { return this.stateOp('fxsave64', 0, true, dst); }
  fxrstor(src: Memory): this { return this.stateOp('fxrstor', 1, false, src); }
  fxrstor64(src: Memory): this { return this.stateOp('fxrstor64', 1, true, src); }

  // ---- moved code

  /**
   * Appends instructions decoded at another address (iced-x86 Instructions, or bytes and their
   * va), re-targeted for wherever they land in this assembler: RIP-relative operands keep their
   * absolute addresses, jmp/jcc/call keep their targets (relaxed like any branch), jrcxz/loop are
   * expanded, and branches to an instruction of the group follow it. Each instruction counts as
   * one instruction of this assembler. Throws ENC_CANNOT_MOVE (nothing appended) for an
   * instruction that cannot move; a target out of rel32 reach fails `encode`.
   */
  relocated(input: RelocationInput, options?: RelocateOptions): this {
    const items = planMovedItems(input, this.count, () => this.label(), options);
    for (const item of items) {
      this.items.push(item);
      if (item.kind === 'bind') this.boundLabels.add(item.label.id);
      else this.count++;
    }
    return this;
  }

  // ---- data

  /** Bytes (each -128..255). */
  byte(...values: Immediate[]): this { return this.data('byte', 1, values); }
  /** 16-bit little-endian words. */
  word(...values: Immediate[]): this { return this.data('word', 2, values); }
  /** 32-bit little-endian words. */
  dword(...values: Immediate[]): this { return this.data('dword', 4, values); }
  /** 64-bit little-endian words; a label or symbol gives its absolute address (ABS64). */
  qword(...values: (Immediate | Label | ExternalSymbol)[]): this {
    return this.emit('qword', (site) => {
      const bytes = new Uint8Array(values.length * 8);
      const fixups: Fixup[] = [];
      values.forEach((v, i) => {
        if (isLabel(v) || isSymbol(v)) {
          if (isLabel(v)) this.checkLabel(v, 'qword', i);
          fixups.push({ at: i * 8, size: 8, pcrel: false, target: v, addend: 0n });
          return;
        }
        const x = immediateValue(v, site.mnemonic, i, site.index);
        const value = truncateSigned(x, 64);
        if (value === undefined) throw immediateRange(site, i, x, 64);
        writeLe(bytes, i * 8, value, 8);
      });
      return { kind: 'fixed', bytes, fixups, mnemonic: 'qword', index: site.index };
    });
  }
  /** A 32-bit PC-relative word, `.long target - .` (plus addend). */
  rel32(target: BranchTarget, addend: Immediate = 0): this {
    const index = this.count;
    const t = this.directTarget('rel32', target, index);
    const a = immediateValue(addend, 'rel32', 1, index);
    return this.pushFixed({ kind: 'fixed', bytes: new Uint8Array(4), fixups: [{ at: 0, size: 4, pcrel: true, target: t, addend: a }], mnemonic: 'rel32', index });
  }
  /** Raw bytes, copied. */
  bytes(data: Uint8Array | readonly number[]): this {
    return this.pushFixed({ kind: 'fixed', bytes: Uint8Array.from(data), fixups: [], mnemonic: 'bytes', index: this.count });
  }
  /** Alias of bytes(). */
  raw(data: Uint8Array | readonly number[]): this { return this.bytes(data); }
  /** Alias of byte() (`.byte`). */
  db(...values: Immediate[]): this { return this.byte(...values); }
  /** Alias of word() (`.word`). */
  dw(...values: Immediate[]): this { return this.word(...values); }
  /** Alias of dword() (`.long`). */
  dd(...values: Immediate[]): this { return this.dword(...values); }
  /** Alias of qword() (`.quad`). */
  dq(...values: (Immediate | Label | ExternalSymbol)[]): this { return this.qword(...values); }
  /** Pads to a multiple of `alignment` (a power of two) of the virtual address: NOPs, or `fill` bytes. */
  align(alignment: number, fill?: number): this {
    if (!Number.isInteger(alignment) || alignment < 1 || alignment > 2 ** 30 || (alignment & (alignment - 1)) !== 0) {
      throw new EncoderError('ENC_INVALID_ALIGNMENT', `alignment ${alignment} is not a power of two up to 2^30`, 'align', 0, this.count);
    }
    if (fill !== undefined && (!Number.isInteger(fill) || fill < 0 || fill > 255)) {
      throw new EncoderError('ENC_IMMEDIATE_RANGE', `fill byte ${fill}`, 'align', 1, this.count);
    }
    this.items.push({ kind: 'align', alignment, fill: fill ?? 'nop', index: this.count });
    this.count++;
    return this;
  }

  // ---- internals

  private emit(mnemonic: string, build: (site: Site) => FixedItem, ...operands: unknown[]): this {
    return this.pushFixed(build(this.siteOf(mnemonic, operands)));
  }

  // No closures on the per-instruction path: each method calls its encoder with this site.
  private site(mnemonic: string, op0?: unknown, op1?: unknown): Site {
    if (isMemory(op0) && op0.target !== undefined && isLabel(op0.target)) this.checkLabel(op0.target, mnemonic, 0);
    if (isMemory(op1) && op1.target !== undefined && isLabel(op1.target)) this.checkLabel(op1.target, mnemonic, 1);
    return { mnemonic, index: this.count };
  }

  private siteOf(mnemonic: string, operands: readonly unknown[]): Site {
    for (let i = 0; i < operands.length; i++) {
      const op = operands[i];
      if (isMemory(op) && op.target !== undefined && isLabel(op.target)) this.checkLabel(op.target, mnemonic, i);
    }
    return { mnemonic, index: this.count };
  }

  private pushFixed(item: FixedItem): this {
    this.items.push(item);
    this.count++;
    return this;
  }

  private fixedBytes(mnemonic: string, bytes: readonly number[]): this {
    return this.pushFixed(rawItem(mnemonic, this.count, bytes));
  }

  private checkLabel(label: Label, mnemonic: string, operand = 0): void {
    if (label.owner !== this.owner) {
      throw new EncoderError('ENC_FOREIGN_LABEL', `label ${label.name ?? `#${label.id}`} belongs to another assembler`, mnemonic, operand, this.count);
    }
  }

  private directTarget(mnemonic: string, target: BranchTarget, index: number): Target {
    if (typeof target === 'number') {
      if (!Number.isSafeInteger(target) || target < 0) {
        throw new EncoderError('ENC_INVALID_OPERAND', `address ${target} is not a safe non-negative integer`, mnemonic, 0, index);
      }
      return BigInt(target);
    }
    if (typeof target === 'bigint' || isSymbol(target)) return target;
    if (isLabel(target)) {
      this.checkLabel(target, mnemonic);
      return target;
    }
    throw new EncoderError('ENC_INVALID_OPERAND', 'expected a label, a symbol, an address, a register or memory', mnemonic, 0, index);
  }

  private controlTransfer(mnemonic: 'jmp' | 'call', digit: number, target: BranchTarget | Gpr | Memory, options: BranchOptions | undefined): this {
    if (isGpr(target) || isMemory(target)) {
      const site = this.site(mnemonic, target);
      const op = expectRm(site, target, 0);
      if (op.size !== undefined && op.size !== 64) throw sizeMismatch(site, 0, `${mnemonic} through a ${op.size}-bit operand (64-bit only)`);
      return this.pushFixed(encodeInstruction(site, { opcode: [0xff], reg: digit, rm: { op, operand: 0 } }));
    }
    const index = this.count;
    const t = this.directTarget(mnemonic, target, index);
    this.items.push({ kind: 'branch', op: mnemonic, cc: 0, target: t, mnemonic, index, near: options?.near === true });
    this.count++;
    return this;
  }

  private stateOp(mnemonic: string, digit: number, rexW: boolean, op: Memory): this {
    return this.emit(mnemonic, (site) => {
      const m = expectMemory(site, op, 0);
      return encodeInstruction(site, { opsize: rexW ? 64 : undefined, opcode: [0x0f, 0xae], reg: digit, rm: { op: m, operand: 0 } });
    }, op);
  }

  private data(mnemonic: string, size: 1 | 2 | 4, values: Immediate[]): this {
    return this.emit(mnemonic, (site) => {
      const bytes = new Uint8Array(values.length * size);
      values.forEach((v, i) => {
        const x = immediateValue(v, site.mnemonic, i, site.index);
        const value = truncateSigned(x, size * 8);
        if (value === undefined) throw immediateRange(site, i, x, size * 8);
        writeLe(bytes, i * size, value, size);
      });
      return { kind: 'fixed', bytes, fixups: [], mnemonic, index: site.index };
    });
  }
}

// One method per condition, ALU operation, shift and unary operation, from the tables.
const proto = Assembler.prototype as unknown as Record<string, unknown>;
for (const cc of CONDITION_NAMES) {
  proto[`j${cc}`] = function (this: Assembler, target: BranchTarget, options?: BranchOptions) { return this.jcc(cc, target, options); };
  proto[`set${cc}`] = function (this: Assembler, dst: Gpr | Memory) { return this.setcc(cc, dst); };
  proto[`cmov${cc}`] = function (this: Assembler, dst: Gpr, src: Gpr | Memory) { return this.cmovcc(cc, dst, src); };
}
for (const op of Object.keys(ALU) as AluOp[]) {
  proto[op] = function (this: Assembler, dst: Operand, src: Operand) {
    const self = this as unknown as Internals;
    return self.pushFixed(encodeAlu(self.site(op, dst, src), op, dst, src));
  };
}
for (const op of Object.keys(SHIFT) as ShiftOp[]) {
  proto[op] = function (this: Assembler, dst: Operand, count: Operand) {
    const self = this as unknown as Internals;
    return self.pushFixed(encodeShift(self.site(op, dst), op, dst, count));
  };
}
for (const op of Object.keys(UNARY) as UnaryOp[]) {
  if (op === 'imul') continue;
  proto[op] = function (this: Assembler, dst: Operand) {
    const self = this as unknown as Internals;
    return self.pushFixed(encodeUnary(self.site(op, dst), op, dst));
  };
}

interface Internals {
  site(mnemonic: string, op0?: unknown, op1?: unknown): Site;
  pushFixed(item: FixedItem): Assembler;
}

/** The byte sequence of the n-byte NOP GNU as emits (1..11). */
export function nopBytes(n: number): Uint8Array {
  const nop = NOPS[n];
  if (nop === undefined || n === 0) throw new EncoderError('ENC_INVALID_ALIGNMENT', `no single ${n}-byte NOP`, 'nop');
  return Uint8Array.from(nop);
}

