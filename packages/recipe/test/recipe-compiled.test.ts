// The built-in recipes made at build time (src/load/builtin-compiled.ts): loadRecipe(name) gives
// from them exactly what parsing the files gives, and parses again as soon as any file of a
// recipe's extends chain says something else.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { builtinRecipesDir, listBuiltinRecipes, loadRecipe, readRecipeFile } from '../src/index.js';
import { compiledBuiltin } from '../src/load/load-recipe.js';
import { COMPILED_BUILTINS_FILE, compiledBuiltinsText } from '../scripts/write-builtins.js';

/** JSON with key order kept: a recipe's key order reaches printed plans. */
const text = (value: unknown): string => JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));

test('the committed builtin-compiled.ts is what scripts/write-builtins.ts writes', () => {
  assert.is(readFileSync(COMPILED_BUILTINS_FILE, 'utf8'), compiledBuiltinsText(), 'run `npm run builtins -w @libos/recipe` and commit the file');
});

test('every built-in recipe comes from the table, equal to parsing its files, key order included', () => {
  const dir = builtinRecipesDir()!;
  const builtins = listBuiltinRecipes();
  assert.ok(builtins.length >= 10);
  for (const { name, path } of builtins) {
    const fast = compiledBuiltin(name, dir, `builtin:${name}`);
    assert.ok(fast, `${name} is in the table`);
    const parsed = readRecipeFile(path, { source: `builtin:${name}` });
    assert.equal(parsed.errors, []);
    assert.equal(fast, parsed.recipe, name);
    assert.is(text(fast), text(parsed.recipe), name);
    assert.is(text(loadRecipe(name)), text(parsed));
    assert.is(loadRecipe(name, { source: 'elsewhere' }).recipe!.source, 'elsewhere');
    // Each call gets its own objects.
    assert.ok(loadRecipe(name).recipe!.match !== loadRecipe(name).recipe!.match);
  }
});

test('a file that changed, the recipe itself or one it extends, is parsed again', () => {
  const top = mkdtempSync(join(tmpdir(), 'libos-compiled-'));
  try {
    changedFiles(join(top, 'recipes'));
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});

function changedFiles(dir: string): void {
  cpSync(builtinRecipesDir()!, dir, { recursive: true });
  assert.ok(compiledBuiltin('glibc-rfc-relaxed', dir, 'x'), 'an identical copy still matches');
  // The parent of glibc-rfc-relaxed changes its native list: the child inherits the change.
  const parent = join(dir, 'glibc-rfc.yaml');
  writeFileSync(parent, readFileSync(parent, 'utf8').replace(/^native:.*$/m, '').concat('\nnative: [vfork]\n'));
  assert.is(compiledBuiltin('glibc-rfc-relaxed', dir, 'x'), undefined);
  assert.is(compiledBuiltin('glibc-rfc', dir, 'x'), undefined);
  assert.equal(loadRecipe('glibc-rfc-relaxed', { recipesDir: dir }).recipe!.native, ['vfork']);
  assert.equal(loadRecipe('glibc-rfc', { recipesDir: dir }).recipe!.native, ['vfork']);
  // A recipe that does not extend it is still taken from the table.
  assert.ok(compiledBuiltin('unannotated', dir, 'x'));
  // A broken file is parsed, and its error reported.
  writeFileSync(join(dir, 'unannotated.yaml'), 'name: [');
  assert.is(compiledBuiltin('unannotated', dir, 'x'), undefined);
  assert.is(loadRecipe('unannotated', { recipesDir: dir }).errors[0]?.code, 'RECIPE_YAML');
}

test('onRead reports the files a recipe is made from, in the order the parser reads them', () => {
  const read: string[] = [];
  const { recipe } = loadRecipe('glibc-rfc-relaxed', { onRead: (path) => read.push(basename(path)) });
  assert.ok(recipe);
  assert.equal(read, ['glibc-rfc-relaxed.yaml', 'glibc-rfc.yaml']);
});

// zod and yaml are loaded on first use (src/lazy-modules.ts): a built-in recipe needs neither, a
// file does. Checked in a fresh process, whose CommonJS cache lists what was required; an ES
// import would not show there (zod is an ES module), so no source may import either but for types.
test('no source imports zod or yaml but for types', () => {
  const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
  for (const file of files(src).filter((f) => f.endsWith('.ts'))) {
    // Parsed, not read line by line: an import list may span lines.
    const parsed = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
    for (const statement of parsed.statements) {
      let from: ts.Expression | undefined;
      let typeOnly = false;
      if (ts.isImportDeclaration(statement)) {
        from = statement.moduleSpecifier;
        typeOnly = statement.importClause?.isTypeOnly === true;
      } else if (ts.isExportDeclaration(statement)) {
        from = statement.moduleSpecifier;
        typeOnly = statement.isTypeOnly;
      }
      if (from === undefined || !ts.isStringLiteral(from) || (from.text !== 'zod' && from.text !== 'yaml')) continue;
      assert.ok(typeOnly, `${file}: ${statement.getText(parsed).replace(/\s+/g, ' ')}`);
    }
  }
});

test('a built-in recipe loads without zod and yaml; a recipe file loads them', () => {
  const index = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'index.ts');
  const script = `
    import { createRequire } from 'node:module';
    const { loadRecipe } = await import(${JSON.stringify(index)});
    const cache = createRequire(import.meta.url).cache;
    const loaded = () => ['zod', 'yaml'].filter((p) => Object.keys(cache).some((k) => k.includes('/node_modules/' + p + '/')));
    if (loadRecipe('unannotated').recipe === undefined) throw new Error('no recipe');
    const builtin = loaded();
    if (loadRecipe(${JSON.stringify(join(builtinRecipesDir()!, 'glibc-rfc-relaxed.yaml'))}).recipe === undefined) throw new Error('no recipe');
    console.log(JSON.stringify({ builtin, file: loaded() }));`;
  const run = spawnSync(process.execPath, ['--conditions=libos-source', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout), { builtin: [], file: ['zod', 'yaml'] });
});

test.run();
