import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listBuiltinRecipes, loadRecipe, type Recipe } from '../src/index.js';

const FULL_ABI: Recipe['abi'] = { flags: 'preserve', redZone: 'preserve', vectorState: 'preserve', rcxR11: 'syscall' };
const ALL_NATIVE: Recipe['native'] = ['rt_sigreturn', 'vfork', 'clone', 'clone3'];
const ANNOTATED: Recipe['match'] = [{ annotation: '.libos.instructions.syscall' }, { annotation: '.libos.instructions.syscall.pcrel' }];

/** What each built-in recipe must normalise to, apart from its description. */
const EXPECTED: Record<string, Omit<Recipe, 'description' | 'source'>> = {
  'glibc-rfc': {
    name: 'glibc-rfc',
    match: ANNOTATED,
    trampoline: { prefer: ['rel32'], fallback: ['abs64', 'trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
  'glibc-rfc-seed-stub': {
    name: 'glibc-rfc-seed-stub',
    match: ANNOTATED,
    trampoline: { prefer: ['rel32'], fallback: ['abs64', 'trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'seed',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
  'glibc-rfc-relaxed': {
    name: 'glibc-rfc-relaxed',
    match: ANNOTATED,
    trampoline: { prefer: ['rel32'], fallback: ['abs64', 'trap'], trapInstruction: 'ud2' },
    abi: { ...FULL_ABI, flags: 'clobber-if-dead', redZone: 'preserve' },
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
  'glibc-rfc-abs64': {
    name: 'glibc-rfc-abs64',
    match: ANNOTATED,
    trampoline: { prefer: ['abs64'], fallback: ['trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
  'trap-only': {
    name: 'trap-only',
    match: [{ instruction: 'syscall' }],
    trampoline: { prefer: ['trap'], fallback: [], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
  'nop-padded': {
    name: 'nop-padded',
    match: [{ instruction: 'syscall', padding: 3 }],
    trampoline: { prefer: ['rel32', 'rel32-site'], fallback: ['abs64', 'trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
  'mov-eax-syscall': {
    name: 'mov-eax-syscall',
    match: [{ instruction: 'syscall', precededBy: 'mov-eax-imm' }],
    trampoline: { prefer: ['rel32-site'], fallback: ['trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
  'gramine-style': {
    name: 'gramine-style',
    match: [
      ...ANNOTATED,
      { instruction: 'syscall', sections: { include: ['.text*'] }, symbols: { exclude: ['__restore_rt'] } },
    ],
    trampoline: { prefer: ['rel32', 'rel32-site', 'displace'], fallback: ['abs64', 'trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'slot', segment: 'gs', offset: 24 },
    native: ['vfork', 'clone', 'clone3', 'rt_sigreturn'],
  },
  'occlum-style': {
    name: 'occlum-style',
    match: [{ instruction: 'syscall', sections: { include: ['.text*'] } }],
    trampoline: { prefer: ['rel32-site', 'displace'], fallback: ['trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'pointer', symbol: '__occlum_entry' },
    native: ALL_NATIVE,
  },
  unannotated: {
    name: 'unannotated',
    match: [{ instruction: 'syscall' }],
    trampoline: { prefer: ['displace', 'rel32-site'], fallback: ['trap'], trapInstruction: 'ud2' },
    abi: FULL_ABI,
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ALL_NATIVE,
  },
};

test('the built-in recipes are exactly the documented set', () => {
  assert.equal(listBuiltinRecipes().map((recipe) => recipe.name), Object.keys(EXPECTED).sort());
});

for (const [name, expected] of Object.entries(EXPECTED)) {
  test(`built-in ${name} loads with no error or warning and normalises as expected`, () => {
    const result = loadRecipe(name);
    assert.equal(result.errors.map(String), []);
    assert.equal(result.warnings.map(String), []);
    const recipe = result.recipe;
    assert.ok(recipe);
    const { description, source, ...rest } = recipe;
    assert.equal(rest, expected);
    assert.is(source, `builtin:${name}`);
    assert.ok(description.length > 20, 'each built-in describes itself in one line');
  });
}

test('each built-in file is named after its recipe, points editors at the schema and explains itself', () => {
  for (const builtin of listBuiltinRecipes()) {
    assert.is(basename(builtin.path), `${builtin.name}.yaml`);
    const text = readFileSync(builtin.path, 'utf8');
    const lines = text.split('\n');
    assert.is(lines[0], '# yaml-language-server: $schema=../packages/recipe/schema/recipe.schema.json');
    const comments = lines.filter((line) => line.startsWith('#')).length;
    assert.ok(comments >= 5, `${builtin.name}: a built-in documents itself in comments (${comments} lines)`);
    assert.ok(builtin.description.length > 0);
  }
});

test('a built-in loaded by path records the path as its source', () => {
  const builtin = listBuiltinRecipes().find((recipe) => recipe.name === 'glibc-rfc');
  assert.ok(builtin);
  const result = loadRecipe(builtin.path);
  assert.equal(result.errors, []);
  assert.is(result.recipe?.source, builtin.path);
});

test.run();
