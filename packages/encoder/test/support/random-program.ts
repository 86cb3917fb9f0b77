// Seeded random programs over the supported forms: each instruction as data (for our Assembler),
// as Intel text (for GNU as) and as the operands iced-x86 should decode back.
import {
  Assembler, byte, dword, fs, gpr16, gpr32, gpr64, gpr8, gpr8High, gs, qword, rip, word,
  type Gpr, type Immediate, type Label, type Memory, type OperandSize,
} from '@libos/encoder';
import { immText, memText } from './intel-text.js';

/** mulberry32: small, fast and the same on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A RIP-relative reference to label k of the block (plus addend), with an access width. */
export interface LabelMemory { kind: 'labelmem'; size: OperandSize | undefined; label: number; addend: number }
/** A direct branch target: label k of the block. */
export interface LabelRef { kind: 'labelref'; label: number }
export type GenOperand = Gpr | Memory | Immediate | LabelMemory | LabelRef;

export interface GenInstruction {
  /** Our method name. */
  readonly method: string;
  readonly operands: readonly GenOperand[];
  /** Text for GNU as. */
  readonly text: string;
}

export interface GenBlock {
  readonly name: string;
  /** Instructions, with `bind` pseudo-instructions (method 'bind', operand LabelRef). */
  readonly items: readonly GenInstruction[];
  readonly labelCount: number;
}

const DISPS = [0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x7fff, 0x7fffffff, -0x80000000];
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sar', 'sal'];
const UNARY = ['inc', 'dec', 'neg', 'not', 'mul', 'div', 'idiv', 'imul'];
const CCS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g', 'c', 'z', 'nz', 'nae', 'nbe', 'po', 'pe', 'nl', 'ng'];
const NOARGS = ['pushfq', 'popfq', 'lahf', 'sahf', 'syscall', 'sysenter', 'int3', 'ud2', 'hlt', 'cpuid', 'rdtsc', 'ret', 'leave', 'cqo', 'cdqe', 'pause', 'cld', 'std', 'mfence'];
const MEMONLY = ['xsave', 'xrstor', 'xsave64', 'xrstor64', 'fxsave', 'fxrstor', 'fxsave64', 'fxrstor64'];

export class ProgramGenerator {
  private readonly next: () => number;
  constructor(seed: number) { this.next = prng(seed); }

  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)] as T; }
  chance(p: number): boolean { return this.next() < p; }

  reg(size: OperandSize): Gpr {
    if (size === 8 && this.chance(0.15)) return this.pick(gpr8High);
    return this.pick<Gpr>(size === 64 ? gpr64 : size === 32 ? gpr32 : size === 16 ? gpr16 : gpr8);
  }

  disp(): number {
    if (this.chance(0.5)) return this.pick(DISPS);
    return this.int(0x100000000) - 0x80000000;
  }

  memory(size: OperandSize | undefined): Memory {
    const builder = (s: OperandSize | undefined) => (s === 64 ? qword : s === 32 ? dword : s === 16 ? word : s === 8 ? byte : qword);
    const segment = this.chance(0.1) ? this.pick([fs, gs]) : undefined;
    const shape = this.int(20);
    let m: Memory;
    if (shape === 0) m = builder(size)({ disp: this.disp(), ...(segment ? { segment } : {}) });
    else if (shape === 1) m = builder(size)(rip, this.disp());
    else {
      const base = this.pick(gpr64);
      const index = this.chance(0.5) ? this.pick(gpr64.filter((r) => r.id !== 4)) : undefined;
      const scale = index ? this.pick([1, 2, 4, 8]) : 1;
      const disp = this.chance(0.3) ? 0 : this.disp();
      m = builder(size)({ base, ...(index ? { index, scale } : {}), disp, ...(segment ? { segment } : {}) });
    }
    return size === undefined ? { ...m, size: undefined } : m;
  }

  imm(size: OperandSize): Immediate {
    const bounds = [0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0xff, 0x7fff, -0x8000, 0xffff, 0x7fffffff, -0x80000000];
    const max = size === 64 ? 2 ** 31 : 2 ** size;
    const min = size === 64 ? -(2 ** 31) : -(2 ** (size - 1));
    const candidates = bounds.filter((v) => v >= min && v < max);
    if (this.chance(0.5)) return this.pick(candidates);
    return min + this.int(max - min);
  }

  size(): OperandSize { return this.pick([8, 16, 32, 64] as const); }
  wideSize(): 16 | 32 | 64 { return this.pick([16, 32, 64] as const); }

  rm(size: OperandSize): Gpr | Memory { return this.chance(0.5) ? this.reg(size) : this.memory(size); }

  /** One random instruction (method and operands) of the block with `labels` labels. */
  instruction(labels: number): { method: string; operands: GenOperand[] } {
    const k = this.int(26);
    const s = this.size();
    switch (k) {
      case 0: case 1: {
        const shape = this.int(5);
        if (shape === 0) return { method: 'mov', operands: [this.reg(s), this.reg(s)] };
        if (shape === 1) return { method: 'mov', operands: [this.reg(s), this.memory(s)] };
        if (shape === 2) return { method: 'mov', operands: [this.memory(s), this.reg(s)] };
        if (shape === 3) {
          if (s === 64 && this.chance(0.3)) return { method: 'mov', operands: [this.reg(64), BigInt.asIntN(64, BigInt(this.int(2 ** 30)) * BigInt(this.int(2 ** 30)) * 17n)] };
          return { method: 'mov', operands: [this.reg(s), this.imm(s)] };
        }
        return { method: 'mov', operands: [this.memory(s), this.imm(s)] };
      }
      case 2: {
        const d = this.wideSize();
        const src = this.pick(d === 16 ? [8] : [8, 16] as const);
        return { method: this.pick(['movzx', 'movsx']), operands: [this.reg(d), this.rm(src as OperandSize)] };
      }
      case 3: return { method: 'movsxd', operands: [this.reg(64), this.rm(32)] };
      case 4: return { method: 'lea', operands: [this.reg(this.wideSize()), this.memory(undefined)] };
      case 5: {
        const a = this.reg(s);
        const b = this.rm(s);
        if (b.kind === 'gpr' && a.id === 0 && b.id === 0 && !a.high8 && !b.high8) return { method: 'xchg', operands: [a, this.memory(s)] };
        return { method: 'xchg', operands: this.chance(0.5) ? [a, b] : [b, a] };
      }
      case 6: {
        const shape = this.int(3);
        if (shape === 0) return { method: 'push', operands: [this.chance(0.8) ? this.reg(64) : this.reg(16)] };
        if (shape === 1) return { method: 'push', operands: [this.imm(64)] };
        return { method: 'push', operands: [this.memory(this.chance(0.8) ? 64 : 16)] };
      }
      case 7: return { method: 'pop', operands: [this.chance(0.7) ? this.reg(64) : this.memory(64)] };
      case 8: case 9: case 10: {
        const op = this.pick(ALU);
        const shape = this.int(4);
        if (shape === 0) return { method: op, operands: [this.reg(s), this.reg(s)] };
        if (shape === 1) return { method: op, operands: [this.reg(s), this.memory(s)] };
        if (shape === 2) return { method: op, operands: [this.memory(s), this.reg(s)] };
        return { method: op, operands: [this.rm(s), this.imm(s)] };
      }
      case 11: {
        const shape = this.int(3);
        if (shape === 0) return { method: 'test', operands: [this.rm(s), this.reg(s)] };
        return { method: 'test', operands: [this.rm(s), this.imm(s)] };
      }
      case 12: return { method: this.pick(UNARY), operands: [this.rm(s)] };
      case 13: {
        const count = this.int(3);
        return { method: this.pick(SHIFTS), operands: [this.rm(s), count === 0 ? 1 : count === 1 ? gpr8[1] as Gpr : this.int(256)] };
      }
      case 14: {
        const d = this.wideSize();
        const shape = this.int(3);
        if (shape === 0) return { method: 'imul', operands: [this.reg(d), this.rm(d)] };
        if (shape === 1) return { method: 'imul', operands: [this.reg(d), this.rm(d), this.imm(d === 64 ? 64 : d)] };
        return { method: 'imul', operands: [this.reg(d), this.imm(d)] };
      }
      case 15: return { method: `set${this.pick(CCS)}`, operands: [this.rm(8)] };
      case 16: {
        const d = this.wideSize();
        return { method: `cmov${this.pick(CCS)}`, operands: [this.reg(d), this.rm(d)] };
      }
      case 17: case 18: return { method: `j${this.pick(CCS)}`, operands: [{ kind: 'labelref', label: this.int(labels) }] };
      case 19: return { method: this.pick(['jmp', 'jmp', 'call']), operands: [{ kind: 'labelref', label: this.int(labels) }] };
      case 20: return { method: this.pick(['jmp', 'call']), operands: [this.chance(0.5) ? this.reg(64) : this.memory(64)] };
      case 21: {
        const size = this.chance(0.2) ? undefined : s;
        const lm: LabelMemory = { kind: 'labelmem', size, label: this.int(labels), addend: this.pick([0, 0, 4, -8, 100]) };
        if (size === undefined) return { method: 'lea', operands: [this.reg(this.wideSize()), lm] };
        return this.chance(0.5) ? { method: 'mov', operands: [this.reg(size), lm] } : { method: 'cmp', operands: [lm, this.imm(size)] };
      }
      case 22: return { method: this.pick(NOARGS), operands: [] };
      case 23: return { method: 'nop', operands: [1 + this.int(11)] };
      case 24: return { method: this.pick(MEMONLY), operands: [this.memory(undefined)] };
      default: return { method: 'int', operands: [this.pick([0x80, 0x21, 1, 255])] };
    }
  }

  /** A block of n instructions with labels bound at random points (some before, some after use). */
  block(name: string, n: number, accept: (method: string, operands: readonly GenOperand[]) => boolean): GenBlock {
    const labels = 1 + this.int(6);
    const bindAt = Array.from({ length: labels }, () => this.int(n + 1)).sort((x, y) => x - y);
    const items: GenInstruction[] = [];
    let nextLabel = 0;
    for (let i = 0; i <= n; i++) {
      while (nextLabel < labels && bindAt[nextLabel] === i) {
        items.push({ method: 'bind', operands: [{ kind: 'labelref', label: nextLabel }], text: `${name}_L${nextLabel}:` });
        nextLabel++;
      }
      if (i === n) break;
      for (;;) {
        const { method, operands } = this.instruction(labels);
        if (!accept(method, operands)) continue;
        items.push({ method, operands, text: instructionText(name, method, operands) });
        break;
      }
      // Alignment padding moves what follows as branches grow: relaxation must agree with as.
      if (this.chance(0.02)) {
        const log2 = 2 + this.int(4);
        items.push({ method: 'align', operands: [1 << log2], text: `.p2align ${log2}` });
      }
      // Long gaps make some branches need rel32.
      if (this.chance(0.03)) {
        const fill = 60 + this.int(80);
        items.push({ method: 'bytes', operands: [fill], text: `.fill ${fill}, 1, 0xcc` });
      }
    }
    return { name, items, labelCount: labels };
  }
}

const PTR: Record<number, string> = { 8: 'byte ptr ', 16: 'word ptr ', 32: 'dword ptr ', 64: 'qword ptr ' };

function instructionText(block: string, method: string, operands: readonly GenOperand[]): string {
  if (method === 'nop') return `.nops ${operands[0]}`;
  const parts = operands.map((op) => {
    if (typeof op === 'number' || typeof op === 'bigint') return immText(op);
    if (op.kind === 'gpr') return op.name;
    if (op.kind === 'mem') return memText(op);
    if (op.kind === 'labelref') return `${block}_L${op.label}`;
    const add = op.addend === 0 ? '' : op.addend < 0 ? ` - ${-op.addend}` : ` + ${op.addend}`;
    return `${op.size === undefined ? '' : PTR[op.size]}[rip + ${block}_L${op.label}${add}]`;
  });
  return parts.length === 0 ? method : `${method} ${parts.join(', ')}`;
}

/** Replays a block on an Assembler; returns the labels and, per emitted instruction, its GenInstruction. */
export function buildBlock(a: Assembler, block: GenBlock): { labels: Label[]; emitted: GenInstruction[] } {
  const labels = Array.from({ length: block.labelCount }, (_, i) => a.label(`${block.name}_L${i}`));
  const emitted: GenInstruction[] = [];
  for (const item of block.items) {
    if (item.method === 'bind') { a.bind(labels[(item.operands[0] as LabelRef).label] as Label); continue; }
    if (item.method === 'bytes') { a.bytes(new Uint8Array(item.operands[0] as number).fill(0xcc)); emitted.push(item); continue; }
    if (item.method === 'align') { a.align(item.operands[0] as number); emitted.push(item); continue; }
    const args = resolveOperands(item.operands, labels);
    const method = (a as unknown as Record<string, (...xs: unknown[]) => unknown>)[item.method];
    if (typeof method !== 'function') throw new Error(`no method ${item.method}`);
    method.apply(a, args);
    emitted.push(item);
  }
  return { labels, emitted };
}

export function resolveOperands(operands: readonly GenOperand[], labels: readonly Label[]): unknown[] {
  return operands.map((op) => {
    if (typeof op !== 'object') return op;
    if (op.kind === 'labelref') return labels[op.label];
    if (op.kind === 'labelmem') {
      const m = rip(labels[op.label] as Label, op.addend);
      return op.size === undefined ? m : { ...m, size: op.size };
    }
    return op;
  });
}
