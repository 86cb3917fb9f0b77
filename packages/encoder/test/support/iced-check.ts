// Decodes our bytes with iced-x86 and checks that they are the instruction we meant: mnemonic,
// registers, memory operands (RIP-relative ones by absolute target), immediates, branch targets.
import iced from 'iced-x86';
import type { Gpr, Memory } from '@libos/encoder';
import type { GenInstruction, GenOperand } from './random-program.js';

const { Decoder, DecoderOptions, Mnemonic, Register, OpKind, MemorySize } = iced;

const CC_CANONICAL: Record<string, string> = {
  c: 'b', nae: 'b', nb: 'ae', nc: 'ae', z: 'e', nz: 'ne', na: 'be', nbe: 'a', pe: 'p', po: 'np', nge: 'l', nl: 'ge', ng: 'le', nle: 'g',
};
const IMM_WIDTH: Record<string, number> = {
  Immediate8: 8, Immediate8_2nd: 8, Immediate16: 16, Immediate32: 32, Immediate64: 64,
  Immediate8to16: 16, Immediate8to32: 32, Immediate8to64: 64, Immediate32to64: 64,
};

function canonicalMnemonic(item: GenInstruction): string {
  const m = item.method;
  for (const prefix of ['cmov', 'set', 'j']) {
    if (m.startsWith(prefix) && m !== 'jmp') {
      const cc = m.slice(prefix.length);
      return prefix + (CC_CANONICAL[cc] ?? cc);
    }
  }
  if (m === 'sal') return 'shl';
  if (m === 'movabs') return 'mov';
  const src = item.operands[1];
  if (m === 'movsx' && typeof src === 'object' && (src as Gpr | Memory).size === 32) return 'movsxd';
  return m;
}

function regName(r: number): string {
  return String(Register[r]).toLowerCase().replace(/^r(\d+)l$/, 'r$1b');
}

function memBits(size: number): number | undefined {
  const name = String(MemorySize[size]);
  const m = /^U?Int(\d+)$/.exec(name);
  if (m) return Number(m[1]);
  return ({ WordOffset: 16, DwordOffset: 32, QwordOffset: 64 } as Record<string, number>)[name];
}

/** Describes operand i of a decoded instruction, with immediates shown at their width. */
function icedOperand(instr: InstanceType<typeof iced.Instruction>, i: number): { text: string; immWidth?: number } {
  const kind = instr.opKind(i);
  const kindName = String(OpKind[kind]);
  if (kind === OpKind.Register) return { text: regName(instr.opRegister(i)) };
  if (kind === OpKind.NearBranch64) return { text: `target 0x${instr.nearBranchTarget.toString(16)}` };
  if (kind === OpKind.Memory) {
    const seg = instr.segmentPrefix === Register.None ? '' : `${regName(instr.segmentPrefix)}:`;
    const base = instr.memoryBase === Register.None ? '' : regName(instr.memoryBase);
    const index = instr.memoryIndex === Register.None ? '' : `${regName(instr.memoryIndex)}*${instr.memoryIndexScale}`;
    return { text: `${memBits(instr.memorySize) ?? '?'} ${seg}[${base}|${index}|0x${BigInt.asUintN(64, instr.memoryDisplacement).toString(16)}]` };
  }
  const width = IMM_WIDTH[kindName];
  if (width !== undefined) return { text: `imm 0x${BigInt.asUintN(width, instr.immediate(i)).toString(16)}`, immWidth: width };
  return { text: kindName };
}

function ourOperand(op: GenOperand, labelVas: readonly bigint[], endVa: bigint, immWidth: number | undefined, icedMemBits: number | undefined): string {
  if (typeof op === 'number' || typeof op === 'bigint') return `imm 0x${BigInt.asUintN(immWidth ?? 64, BigInt(op)).toString(16)}`;
  if (op.kind === 'gpr') return op.name;
  if (op.kind === 'labelref') return `target 0x${(labelVas[op.label] as bigint).toString(16)}`;
  // Widths iced does not express as an integer size (xsave areas, lea) are not compared.
  const bits = (size: number | undefined) => (icedMemBits === undefined || size === undefined ? String(icedMemBits ?? '?') : String(size));
  if (op.kind === 'labelmem') {
    return `${bits(op.size)} [rip||0x${BigInt.asUintN(64, (labelVas[op.label] as bigint) + BigInt(op.addend)).toString(16)}]`;
  }
  const seg = op.segment === undefined ? '' : `${op.segment.name}:`;
  const base = op.base === undefined ? '' : op.base.name;
  const index = op.index === undefined ? '' : `${op.index.name}*${op.scale}`;
  const disp = op.base?.kind === 'rip' ? endVa + op.disp : op.disp;
  return `${bits(op.size)} ${seg}[${base}|${index}|0x${BigInt.asUintN(64, disp).toString(16)}]`;
}

const decoderOptions = DecoderOptions.None;

/**
 * Decodes `bytes` (one emitted item) at `va` and returns a description of any difference from
 * `item`, or undefined when iced sees exactly the intended instruction.
 */
export function checkDecoded(item: GenInstruction, bytes: Uint8Array, va: bigint, labelVas: readonly bigint[]): string | undefined {
  const decoder = new Decoder(64, bytes, decoderOptions);
  decoder.ip = va;
  try {
    if (item.method === 'nop') {
      let total = 0;
      while (decoder.canDecode) {
        const instr = decoder.decode();
        const name = String(Mnemonic[instr.mnemonic]);
        total += instr.length;
        instr.free();
        if (name !== 'Nop') return `nop decodes as ${name}`;
      }
      return total === bytes.length ? undefined : `nop length ${total} != ${bytes.length}`;
    }
    const instr = decoder.decode();
    try {
      if (instr.length !== bytes.length) return `iced decodes ${instr.length} of ${bytes.length} bytes`;
      const mnemonic = String(Mnemonic[instr.mnemonic]).toLowerCase();
      const expected = canonicalMnemonic(item);
      if (mnemonic !== expected) return `iced says ${mnemonic}, expected ${expected}`;
      let ops = item.operands;
      if (item.method === 'imul' && ops.length === 2 && (typeof ops[1] === 'number' || typeof ops[1] === 'bigint')) ops = [ops[0] as GenOperand, ops[0] as GenOperand, ops[1]];
      if (instr.opCount !== ops.length) return `iced sees ${instr.opCount} operands, expected ${ops.length}`;
      let memoryBits: number | undefined;
      for (let i = 0; i < instr.opCount; i++) if (instr.opKind(i) === OpKind.Memory) memoryBits = memBits(instr.memorySize);
      const theirs: string[] = [];
      const ours: string[] = [];
      for (let i = 0; i < ops.length; i++) {
        const d = icedOperand(instr, i);
        theirs.push(d.text);
        ours.push(ourOperand(ops[i] as GenOperand, labelVas, va + BigInt(bytes.length), d.immWidth, memoryBits));
      }
      // xchg and test are symmetric: the encoder may put either operand in ModRM.reg.
      if (item.method === 'xchg' || item.method === 'test') { theirs.sort(); ours.sort(); }
      const a = theirs.join(', ');
      const b = ours.join(', ');
      return a === b ? undefined : `iced operands [${a}], expected [${b}]`;
    } finally {
      instr.free();
    }
  } finally {
    decoder.free();
  }
}
