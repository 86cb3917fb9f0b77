// Builders for table cases: one form, its Intel text and the Assembler call that should match it.
import type { Assembler } from '@libos/encoder';
import type { Case } from './compare.js';
import { instructionText, type TextOperand } from './intel-text.js';

/** A case whose text is generated from the operands: `form('add', rax, 1)`. */
export function form(mnemonic: string, ...operands: TextOperand[]): Case {
  return {
    text: instructionText(mnemonic, operands),
    build: (a: Assembler) => {
      const method = (a as unknown as Record<string, (...args: unknown[]) => unknown>)[mnemonic];
      if (typeof method !== 'function') throw new Error(`no method ${mnemonic}`);
      method.apply(a, operands);
    },
  };
}

/** A case with hand-written text (labels, symbols, directives). */
export function text(source: string, build: (a: Assembler) => void): Case {
  return { text: source, build };
}
