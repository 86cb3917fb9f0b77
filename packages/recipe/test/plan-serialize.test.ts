/** The plan's JSON form: addresses as hex strings, negative ones (relocation addends) too, read back exactly. */
import { deflateRawSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeElf } from '@libos/elfkit';
import { parsePlan, planToElfEdit, readStoredPlan, serializePlan, PLAN_SCHEMA, type PatchPlan } from '@libos/recipe';
import { goldenFixtures, planFile } from './plan-helpers.js';

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

test('the plan stored in a rewritten file reads back; one that inflates past the bound is PLAN_BAD_JSON, not gigabytes', async () => {
  const { elf, plan } = await planFile(goldenFixtures().static.elf, 'glibc-rfc');
  const edit = planToElfEdit(plan);
  const out = writeElf(elf, edit);
  assert.is(readStoredPlan(out)?.patches.length, plan.patches.length);
  // The same file with a stored plan of 8 MiB of '[' (8 KiB deflated), read with a 1 MiB bound.
  const bomb = Buffer.concat([Buffer.from('libos-plan/deflate\n'), deflateRawSync(Buffer.alloc(8 << 20, '['), { level: 9 })]);
  const crafted = writeElf(elf, { ...edit, metadata: new Uint8Array(bomb) });
  try {
    readStoredPlan(crafted, { maxPlanBytes: 1 << 20 });
    assert.unreachable('no error');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'PLAN_BAD_JSON');
    assert.match((e as Error).message, /does not inflate within 1048576 bytes/);
  }
});

test.run();
