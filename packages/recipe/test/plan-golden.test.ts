// Golden plans: the serialised plan of every built-in recipe over fixtures/plan/golden.S (linked
// static non-PIE and `ld -pie` with `as`/`ld` only, so the input is the same on every machine) is
// compared with a committed file in test/golden/. Regenerate with UPDATE_GOLDEN=1.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf } from '@libos/elfkit';
import { listBuiltinRecipes, parsePlan, serializePlan, type PatchPlan } from '@libos/recipe';
import { GOLDEN_DIR, goldenFixtures, planFile, type LinkKind } from './plan-helpers.js';

const UPDATE = process.env['UPDATE_GOLDEN'] === '1';
const KINDS: LinkKind[] = ['static', 'pie'];

function goldenPath(recipe: string, kind: LinkKind): string {
  return join(GOLDEN_DIR, `${recipe}.${kind}.plan.json`);
}

/** The first line where two texts differ, for a readable failure. */
function firstDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i]) {
      // Long hex lines: show the neighbourhood of the first differing column only.
      const x = a[i] ?? '(end)';
      const y = e[i] ?? '(end)';
      let col = 0;
      while (col < x.length && x[col] === y[col]) col++;
      const cut = (t: string) => (t.length <= 160 ? t : `${col > 60 ? '...' : ''}${t.slice(Math.max(0, col - 60), col + 60)}...`);
      return `line ${i + 1}, column ${col + 1}:\n  golden: ${cut(y)}\n  actual: ${cut(x)}`;
    }
  }
  return 'no difference';
}

test('the golden fixture links to the same bytes as the plans were made from (static and PIE)', () => {
  const fx = goldenFixtures();
  assert.is(fx.static.elf.kind, 'static');
  assert.is(fx.pie.elf.kind, 'pie');
  for (const kind of KINDS) {
    const forms = fx[kind].elf.syscallAnnotations().map((a) => `${a.form}:${a.length}`).sort();
    assert.equal(forms, ['pcrel:12', 'quad:12', 'quad:12', 'quad:21'], kind);
  }
});

for (const { name } of listBuiltinRecipes()) {
  for (const kind of KINDS) {
    test(`golden: ${name} over golden.S (${kind})`, async () => {
      const { plan } = await planFile(goldenFixtures()[kind].elf, name);
      const text = serializePlan(plan);
      const file = goldenPath(name, kind);
      if (UPDATE) {
        mkdirSync(GOLDEN_DIR, { recursive: true });
        writeFileSync(file, text);
        return;
      }
      assert.ok(existsSync(file), `${file} is missing: run the test with UPDATE_GOLDEN=1 and commit it`);
      const expected = readFileSync(file, 'utf8');
      if (text !== expected) assert.unreachable(`${name} (${kind}) differs from ${file} (if the engine's output changed on purpose, regenerate with UPDATE_GOLDEN=1 and review the diff); ${firstDifference(text, expected)}`);
      // Every site of the golden input is patched or refused with a reason.
      assert.is(plan.patches.length + plan.refused.length, plan.stats.sites);
      for (const r of plan.refused) assert.ok(r.reason.length > 0);
    });
  }
}

test('every golden file belongs to a built-in recipe and a link kind', () => {
  if (!existsSync(GOLDEN_DIR)) assert.unreachable('no golden directory');
  const expected = new Set(listBuiltinRecipes().flatMap(({ name }) => KINDS.map((k) => `${name}.${k}.plan.json`)));
  for (const f of readdirSync(GOLDEN_DIR)) assert.ok(expected.has(f), `stale golden file ${f}`);
});

test('determinism: the same input and recipe give byte-identical JSON twice, from two reads of the file', async () => {
  for (const kind of KINDS) {
    const fx = goldenFixtures()[kind];
    for (const { name } of listBuiltinRecipes()) {
      const first = serializePlan((await planFile(readElf(readFileSync(fx.path)), name)).plan);
      const second = serializePlan((await planFile(readElf(readFileSync(fx.path)), name)).plan);
      assert.ok(first === second, `${name} (${kind}): two plans of the same input differ`);
    }
  }
});

/** Deep equality that knows bigint and Uint8Array (uvu's equal compares typed arrays loosely). */
function sameValue(a: unknown, b: unknown, path: string): string | undefined {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) return `${path}: one side is not bytes`;
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) return `${path}: bytes differ`;
    return undefined;
  }
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return `${path}: arrays differ in length`;
    for (let i = 0; i < a.length; i++) {
      const d = sameValue(a[i], b[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (a !== null && typeof a === 'object') {
    if (b === null || typeof b !== 'object') return `${path}: object vs ${String(b)}`;
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined).sort();
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined).sort();
    if (ka.join() !== kb.join()) return `${path}: keys ${ka.join(',')} vs ${kb.join(',')}`;
    for (const k of ka) {
      const d = sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return a === b ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
}

test('round trip: parsePlan(serializePlan(plan)) is the plan, and serialises to the same text', async () => {
  for (const kind of KINDS) {
    for (const { name } of listBuiltinRecipes()) {
      const { plan } = await planFile(goldenFixtures()[kind].elf, name);
      const text = serializePlan(plan);
      const back: PatchPlan = parsePlan(text);
      const diff = sameValue(back, plan, 'plan');
      assert.is(diff, undefined, `${name} (${kind}): ${diff}`);
      assert.ok(serializePlan(back) === text, `${name} (${kind}): reserialised text differs`);
      assert.is(typeof (back.patches[0]?.va ?? back.refused[0]?.va), 'bigint');
    }
  }
});

test('parsePlan refuses text that is not a plan', () => {
  for (const text of ['not json', '{"schema":"something-else"}', '[]']) {
    try {
      parsePlan(text);
      assert.unreachable(`accepted ${text}`);
    } catch (e) {
      assert.is((e as { code?: string }).code, 'PLAN_BAD_JSON', text);
    }
  }
});

test.run();
