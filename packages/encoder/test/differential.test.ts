// Seeded random differential test: thousands of instructions from the supported forms, with
// labels and branches that need relaxing, assembled by us and by GNU as (one `as` run), compared
// byte for byte, and each instruction decoded back with iced-x86 to the instruction we meant.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Assembler, EncoderError } from '@libos/encoder';
import { assembleSnippets, hex } from './support/gnu-as.js';
import { checkDecoded } from './support/iced-check.js';
import { buildBlock, ProgramGenerator, resolveOperands, type GenBlock, type GenOperand } from './support/random-program.js';

const SEED = Number(process.env.LIBOS_ENC_SEED ?? 0x5eed2026);
const BLOCKS = 120;
const PER_BLOCK = 50;

test(`random programs (seed ${SEED}): ${BLOCKS * PER_BLOCK} instructions match GNU as and decode back with iced`, () => {
  const gen = new ProgramGenerator(SEED);
  let rejected = 0;
  // High-byte registers cannot meet a REX prefix; as refuses those too, so they are drawn again.
  const accept = (method: string, operands: readonly GenOperand[]): boolean => {
    const a = new Assembler();
    const labels = Array.from({ length: 8 }, () => a.label());
    try {
      (a as unknown as Record<string, (...xs: unknown[]) => unknown>)[method]?.apply(a, resolveOperands(operands, labels));
      return true;
    } catch (e) {
      if (e instanceof EncoderError && e.code === 'ENC_INVALID_OPERAND' && /ah, ch, dh and bh/.test(e.message)) { rejected++; return false; }
      throw e;
    }
  };
  const blocks: GenBlock[] = Array.from({ length: BLOCKS }, (_, i) => gen.block(`b${i}`, PER_BLOCK, accept));
  const snippets = assembleSnippets(blocks.map((b) => b.items.map((x) => x.text).join('\n')));

  const mismatches: string[] = [];
  let instructions = 0;
  let relaxedNear = 0;
  let aligns = 0;
  const methods = new Set<string>();
  blocks.forEach((block, bi) => {
    const expected = snippets[bi];
    if (expected === undefined) throw new Error('missing snippet');
    const a = new Assembler();
    const { labels, emitted } = buildBlock(a, block);
    const va = BigInt(expected.offset);
    const r = a.encode({ va });
    const labelVas = labels.map((l) => r.labelVa(l));
    emitted.forEach((item, i) => {
      const start = r.instructionOffsets[i] as number;
      const end = r.instructionOffsets[i + 1] as number;
      if (item.method === 'bytes' || item.method === 'align') {
        if (item.method === 'align') aligns++;
        if (hex(r.bytes.subarray(start, end)) !== hex(expected.bytes.subarray(start, end))) mismatches.push(`${block.name}#${i} ${item.text}: padding differs`);
        return;
      }
      instructions++;
      methods.add(item.method);
      const ours = r.bytes.subarray(start, end);
      const theirs = expected.bytes.subarray(start, end);
      if (ours[0] === 0xe9 || (ours[0] === 0x0f && ((ours[1] ?? 0) & 0xf0) === 0x80)) relaxedNear++;
      if (hex(ours) !== hex(theirs)) mismatches.push(`${block.name}#${i} ${item.text}: as ${hex(theirs)}, ours ${hex(ours)}`);
      else {
        const problem = checkDecoded(item, ours, va + BigInt(start), labelVas);
        if (problem !== undefined) mismatches.push(`${block.name}#${i} ${item.text} (${hex(ours)}): ${problem}`);
      }
    });
    if (r.bytes.length !== expected.bytes.length) mismatches.push(`${block.name}: length ${r.bytes.length} vs as ${expected.bytes.length}`);
  });
  assert.equal(mismatches.slice(0, 15), [], `${mismatches.length} mismatches`);
  assert.is(instructions, BLOCKS * PER_BLOCK);
  assert.ok(rejected < instructions / 10, `too many rejected draws: ${rejected}`);
  assert.ok(relaxedNear > 20, `branches relaxed to rel32: ${relaxedNear}`);
  assert.ok(methods.size > 100, `distinct methods drawn: ${methods.size}`);
  assert.ok(aligns > 20, `alignment directives drawn: ${aligns}`);
});

test.run();
