// Writes our operands as GNU as Intel-syntax text, so generated cases can be fed to `as`.
import type { Gpr, Immediate, Memory } from '@libos/encoder';

const PTR: Record<number, string> = { 8: 'byte ptr ', 16: 'word ptr ', 32: 'dword ptr ', 64: 'qword ptr ' };

export type TextOperand = Gpr | Memory | Immediate;

export function immText(v: Immediate): string {
  const b = BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

export function memText(m: Memory): string {
  const parts: string[] = [];
  if (m.base !== undefined) parts.push(m.base.name);
  if (m.index !== undefined) parts.push(`${m.index.name}*${m.scale}`);
  let inner = parts.join(' + ');
  if (m.disp !== 0n || parts.length === 0) {
    if (parts.length === 0) inner = immText(m.disp);
    else inner += m.disp < 0n ? ` - 0x${(-m.disp).toString(16)}` : ` + 0x${m.disp.toString(16)}`;
  }
  const seg = m.segment === undefined ? '' : `${m.segment.name}:`;
  return `${m.size === undefined ? '' : PTR[m.size]}${seg}[${inner}]`;
}

export function operandText(op: TextOperand): string {
  if (typeof op === 'number' || typeof op === 'bigint') return immText(op);
  if (op.kind === 'gpr') return op.name;
  return memText(op);
}

export function instructionText(mnemonic: string, operands: readonly TextOperand[]): string {
  return operands.length === 0 ? mnemonic : `${mnemonic} ${operands.map(operandText).join(', ')}`;
}
