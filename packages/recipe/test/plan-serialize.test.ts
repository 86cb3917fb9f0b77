/** The plan's JSON form: addresses as hex strings, negative ones (relocation addends) too, read back exactly. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePlan, serializePlan, PLAN_SCHEMA, type PatchPlan } from '@libos/recipe';

test('negative bigints (a PC32 addend of -4) serialise as -0x4 and parse back', () => {
  const plan = {
    schema: PLAN_SCHEMA,
    input: { size: 1, sha256: '00', kind: 'exec' },
    recipe: { name: 'x', source: 'x' },
    entry: { kind: 'symbol', name: 'outside' },
    patches: [],
    refused: [],
    segments: [],
    symbols: [],
    relocations: [{ segment: '.libos.text', offset: 9, type: 'pc32', symbol: 'outside', addend: -4n }],
    stats: { sites: 0, patched: 0, refused: 0, reported: 0, byVariant: {}, relaxations: {}, bytesAdded: 0 },
  } as PatchPlan;
  const text = serializePlan(plan);
  assert.match(text, /"addend": "-0x4"/);
  assert.is(parsePlan(text).relocations[0]!.addend, -4n);
  assert.is(serializePlan(parsePlan(text)), text);
});

test.run();
