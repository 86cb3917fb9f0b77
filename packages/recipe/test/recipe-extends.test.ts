import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadHandler, loadRecipe, parseRecipe, type Recipe } from '../src/index.js';

function scratch(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'libos-recipe-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

test('a recipe of two keys is complete: every other section takes its default', () => {
  const result = parseRecipe('name: tiny\nmatch:\n  - instruction: syscall\n', 'tiny.yaml');
  assert.equal(result.errors, []);
  assert.equal(result.warnings, []);
  const expected: Recipe = {
    name: 'tiny',
    description: '',
    source: 'tiny.yaml',
    match: [{ instruction: 'syscall' }],
    trampoline: { prefer: ['rel32', 'rel32-site'], fallback: ['abs64', 'trap'], trapInstruction: 'ud2' },
    abi: { flags: 'preserve', redZone: 'preserve', vectorState: 'preserve', rcxR11: 'syscall' },
    stub: 'fast',
    entry: { kind: 'passthrough' },
    native: ['rt_sigreturn', 'vfork', 'clone', 'clone3'],
  };
  assert.equal(result.recipe, expected);
});

test('a section given in part gets defaults for the rest', () => {
  const result = parseRecipe('name: part\nmatch:\n  - instruction: syscall\ntrampoline: { fallback: [trap] }\nabi: { red-zone: unused }\n', 'part.yaml');
  assert.equal(result.recipe?.trampoline, { prefer: ['rel32', 'rel32-site'], fallback: ['trap'], trapInstruction: 'ud2' });
  assert.equal(result.recipe?.abi, { flags: 'preserve', redZone: 'unused', vectorState: 'preserve', rcxR11: 'syscall' });
});

test('every entry form normalises to its Entry', () => {
  const cases: [string, Recipe['entry']][] = [
    ['passthrough', { kind: 'passthrough' }],
    ['trace', { kind: 'trace' }],
    ['{ symbol: libos_entry }', { kind: 'symbol', name: 'libos_entry' }],
    ['{ address: 0x7f0000000000 }', { kind: 'address', va: 0x7f0000000000n }],
    ['{ address: 0xffffffffff600000 }', { kind: 'address', va: 0xffffffffff600000n }],
    ['{ address: "0xffffffffff600008" }', { kind: 'address', va: 0xffffffffff600008n }],
    ['{ address: 4096 }', { kind: 'address', va: 4096n }],
    ['{ slot: { segment: fs, offset: 0 } }', { kind: 'slot', segment: 'fs', offset: 0 }],
    ['{ pointer: __occlum_entry }', { kind: 'pointer', symbol: '__occlum_entry' }],
    ['{ handler: handlers/trace.c }', { kind: 'handler', source: resolve('/r/handlers/trace.c') }],
  ];
  for (const [written, expected] of cases) {
    const result = parseRecipe(`name: e\nmatch:\n  - instruction: syscall\nentry: ${written}\n`, '/r/e.yaml');
    assert.equal(result.errors.map(String), [], written);
    assert.equal(result.recipe?.entry, expected, written);
  }
});

test('match rules keep their filters, with kebab-case keys in camelCase', () => {
  const text = [
    'name: filters',
    'match:',
    '  - instruction: syscall',
    '    padding: 3',
    '    preceded-by: mov-eax-imm',
    '    sections: { include: [".text*"], exclude: [] }',
    '    symbols: { include: ["*"], exclude: [__restore_rt] }',
    '    syscalls: { include: [getppid, 39], exclude: [vfork] }',
    '',
  ].join('\n');
  const result = parseRecipe(text, 'f.yaml');
  assert.equal(result.errors.map(String), []);
  assert.equal(result.recipe?.match, [
    {
      instruction: 'syscall',
      padding: 3,
      precededBy: 'mov-eax-imm',
      sections: { include: ['.text*'], exclude: [] },
      symbols: { include: ['*'], exclude: ['__restore_rt'] },
      syscalls: { include: ['getppid', 39], exclude: ['vfork'] },
    },
  ]);
});

test('extends a built-in by name: the child overrides per section and inherits the rest', () => {
  const text = 'name: child\nextends: glibc-rfc\nabi: { flags: clobber }\nentry: { symbol: my_entry }\n';
  const result = parseRecipe(text, 'child.yaml');
  assert.equal(result.errors.map(String), []);
  const recipe = result.recipe;
  assert.ok(recipe);
  assert.is(recipe.name, 'child');
  assert.is(recipe.description, '', 'a description is not inherited');
  assert.equal(recipe.match, [{ annotation: '.libos.instructions.syscall' }, { annotation: '.libos.instructions.syscall.pcrel' }]);
  assert.equal(recipe.trampoline, { prefer: ['rel32'], fallback: ['abs64', 'trap'], trapInstruction: 'ud2' });
  // abi merges key by key: the parent's red-zone policy and the rest stay.
  assert.equal(recipe.abi, { flags: 'clobber', redZone: 'preserve', vectorState: 'preserve', rcxR11: 'syscall' });
  assert.equal(recipe.entry, { kind: 'symbol', name: 'my_entry' });
});

test('extends by relative path, through two levels; lists and entry replace, maps merge', () => {
  const dir = scratch({
    'base/grand.yaml': 'name: grand\nmatch:\n  - instruction: syscall\ntrampoline: { prefer: [displace], trap-instruction: int3 }\nabi: { vector-state: clobber }\nnative: [rt_sigreturn]\nentry: { handler: h.c }\n',
    'base/parent.yaml': 'name: parent\nextends: grand.yaml\nabi: { red-zone: unused }\nstub: seed\n',
    'child.yaml': 'name: child\nextends: ./base/parent.yaml\nmatch:\n  - annotation: .libos.instructions.syscall\ntrampoline: { fallback: [trap] }\nnative: [clone, vfork]\n',
  });
  const result = loadRecipe(join(dir, 'child.yaml'));
  assert.equal(result.errors.map(String), []);
  const recipe = result.recipe;
  assert.ok(recipe);
  assert.equal(recipe.match, [{ annotation: '.libos.instructions.syscall' }]);
  assert.equal(recipe.trampoline, { prefer: ['displace'], fallback: ['trap'], trapInstruction: 'int3' });
  assert.equal(recipe.abi, { flags: 'preserve', redZone: 'unused', vectorState: 'clobber', rcxR11: 'syscall' });
  assert.is(recipe.stub, 'seed');
  assert.equal(recipe.native, ['clone', 'vfork']);
  // A handler path stays relative to the recipe that names it, not to the one that extends it.
  assert.equal(recipe.entry, { kind: 'handler', source: join(dir, 'base', 'h.c') });
  assert.is(recipe.source, join(dir, 'child.yaml'));
});

test('extends by absolute path: the path itself, not one under the extending file\'s folder', () => {
  const base = scratch({ 'base.yaml': 'name: base\nmatch:\n  - instruction: syscall\nstub: seed\n' });
  const dir = scratch({ 'child.yaml': `name: child\nextends: ${join(base, 'base.yaml')}\n` });
  const result = loadRecipe(join(dir, 'child.yaml'));
  assert.equal(result.errors.map(String), []);
  assert.is(result.recipe?.stub, 'seed');
  // A missing absolute parent is named as written.
  const missing = scratch({ 'child.yaml': `name: child\nextends: ${join(base, 'gone.yaml')}\n` });
  assert.match(loadRecipe(join(missing, 'child.yaml')).errors.map(String).join('\n'), `cannot read '${join(base, 'gone.yaml')}'`);
});

test('a recipe that extends may leave out match; one that does not, may not', () => {
  assert.equal(parseRecipe('name: a\nextends: trap-only\n', 'a.yaml').recipe?.match, [{ instruction: 'syscall' }]);
  assert.equal(parseRecipe('name: a\nstub: seed\n', 'a.yaml').errors.map(String), [
    "a.yaml:1:1: missing required key 'match' (only a recipe with 'extends' may leave it out)",
  ]);
});

test('a cycle of extends is refused at the extends that closes it', () => {
  const dir = scratch({
    'a.yaml': 'name: a\nextends: b.yaml\n',
    'b.yaml': 'name: b\nmatch:\n  - instruction: syscall\nextends: ./a.yaml\n',
    'self.yaml': 'name: self\nextends: self.yaml\n',
  });
  const loop = loadRecipe(join(dir, 'a.yaml'));
  assert.is(loop.recipe, undefined);
  assert.equal(loop.errors.map(String), [`${join(dir, 'b.yaml')}:4:10: extends: the chain of extends loops: a.yaml -> b.yaml -> a.yaml`]);
  assert.is(loop.errors[0]?.code, 'RECIPE_EXTENDS');
  const self = loadRecipe(join(dir, 'self.yaml'));
  assert.equal(self.errors.map(String), [`${join(dir, 'self.yaml')}:2:10: extends: the chain of extends loops: self.yaml -> self.yaml`]);
});

test('a chain of 5,000 extends stops at 64 recipes with one error at the extends that goes past', () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 5000; i++) files[`c${i}.yaml`] = `name: c${i}\nextends: c${i + 1}.yaml\n`;
  files['c5000.yaml'] = 'name: c5000\nmatch:\n  - instruction: syscall\n';
  const dir = scratch(files);
  const r = loadRecipe(join(dir, 'c0.yaml'));
  assert.is(r.recipe, undefined);
  assert.equal(r.errors.map(String), [`${join(dir, 'c63.yaml')}:2:10: extends: the chain of extends is longer than 64 recipes`]);
  assert.is(r.errors[0]?.code, 'RECIPE_EXTENDS');
  // The bound, exactly: 64 files in a chain (c4937 to c5000) load, 65 do not.
  assert.ok(loadRecipe(join(dir, 'c4938.yaml')).recipe !== undefined);
  assert.ok(loadRecipe(join(dir, 'c4937.yaml')).recipe !== undefined);
  assert.equal(loadRecipe(join(dir, 'c4936.yaml')).errors.map(String), [`${join(dir, 'c4999.yaml')}:2:10: extends: the chain of extends is longer than 64 recipes`]);
});

test('a recipe, a parent or a handler that is a device or a FIFO is an error at once, not read', async () => {
  const dir = scratch({ 'child.yaml': 'name: child\nextends: ./fifo.yaml\n' });
  execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
  const device = loadRecipe('/dev/zero');
  assert.is(device.recipe, undefined);
  assert.match(device.errors.map(String).join('\n'), /not a regular file/);
  const child = loadRecipe(join(dir, 'child.yaml'));
  assert.equal(child.errors.map(String), [`${join(dir, 'child.yaml')}:2:10: extends: cannot read '${join(dir, 'fifo.yaml')}': not a regular file (a device, a pipe or a socket)`]);
  for (const path of ['/dev/zero', join(dir, 'fifo.yaml')]) {
    try {
      await loadHandler(path);
      assert.unreachable('read');
    } catch (e) {
      assert.is((e as { code?: string }).code, 'LINK_COMPILE_FAILED');
      assert.match((e as Error).message, /cannot read the handler: not a regular file/);
    }
  }
});

test('extends of a missing file or an unknown built-in is one error at the extends value', () => {
  const missing = parseRecipe('name: a\nextends: nowhere/x.yaml\n', 'a.yaml');
  assert.equal(missing.errors.map(String), ["a.yaml:2:10: extends: cannot read 'nowhere/x.yaml': no such file"]);
  const unknown = parseRecipe('name: a\nextends: glibc-rcf\n', 'a.yaml');
  assert.is(unknown.errors.length, 1);
  assert.is(unknown.errors[0]?.code, 'RECIPE_EXTENDS');
  assert.match(String(unknown.errors[0]), /^a\.yaml:2:10: extends: no built-in recipe 'glibc-rcf' \(did you mean 'glibc-rfc'\?\); built-in recipes: glibc-rfc, /);
});

test('an error in a parent is reported in the parent file', () => {
  const dir = scratch({
    'parent.yaml': 'name: parent\nmatch:\n  - instruction: syscall\nstub: slow\n',
    'child.yaml': 'name: child\nextends: parent.yaml\n',
  });
  const result = loadRecipe(join(dir, 'child.yaml'));
  assert.equal(result.errors.map(String), [`${join(dir, 'parent.yaml')}:4:7: stub: 'slow' is not allowed; allowed values: fast, seed`]);
});

test('loadRecipe: an unknown name or a missing file is RECIPE_NOT_FOUND', () => {
  const unknown = loadRecipe('glibc-rfc-relax');
  assert.is(unknown.errors[0]?.code, 'RECIPE_NOT_FOUND');
  assert.match(String(unknown.errors[0]), /^glibc-rfc-relax: no built-in recipe 'glibc-rfc-relax' \(did you mean 'glibc-rfc-relaxed'\?\)/);
  const missing = loadRecipe('/nonexistent/recipe.yaml');
  assert.equal(missing.errors.map(String), ['/nonexistent/recipe.yaml: cannot read the recipe: no such file']);
  assert.is(missing.errors[0]?.code, 'RECIPE_NOT_FOUND');
});

test('a private recipes folder can stand in for the built-ins', () => {
  const dir = scratch({
    'glibc-rfc.yaml': 'name: glibc-rfc\ndescription: mine\nmatch:\n  - instruction: syscall\n',
    'mine.yaml': 'name: mine\nextends: glibc-rfc\nstub: seed\n',
  });
  const result = loadRecipe('mine', { recipesDir: dir });
  assert.equal(result.errors.map(String), []);
  assert.equal(result.recipe?.match, [{ instruction: 'syscall' }]);
  assert.is(result.recipe?.source, 'builtin:mine');
});

test.run();
