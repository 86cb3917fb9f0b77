import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RECIPE_DIAGNOSTIC_CODES, generateRecipeJsonSchema, listBuiltinRecipes } from '../src/index.js';

const recipeJsonSchema = generateRecipeJsonSchema();

const docs = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'recipe-language.md'), 'utf8');
/** Lines that define something: headings and table rows. */
const defining = docs.split('\n').filter((line) => line.startsWith('#') || line.startsWith('|'));

function definesKey(key: string): boolean {
  return defining.some((line) => line.includes(`\`${key}\``));
}

/** Every key of the language, at any depth, from the JSON Schema. */
function schemaKeys(node: unknown, keys = new Set<string>()): Set<string> {
  if (node === null || typeof node !== 'object') return keys;
  const properties = (node as { properties?: Record<string, unknown> }).properties;
  for (const key of Object.keys(properties ?? {})) keys.add(key);
  for (const value of Object.values(node)) schemaKeys(value, keys);
  return keys;
}

test('docs/recipe-language.md gives every key of the schema a heading or a table row', () => {
  const missing = [...schemaKeys(recipeJsonSchema)].filter((key) => !definesKey(key));
  assert.equal(missing, []);
});

test('docs/recipe-language.md lists every allowed value of every enum', () => {
  const values = new Set<string>();
  const visit = (node: unknown, underSyscalls: boolean): void => {
    if (node === null || typeof node !== 'object') return;
    const json = node as { enum?: unknown[]; properties?: Record<string, unknown> };
    if (Array.isArray(json.enum) && !underSyscalls) for (const value of json.enum) values.add(String(value));
    for (const [key, value] of Object.entries(node)) visit(value, underSyscalls || key === 'syscalls');
  };
  visit(recipeJsonSchema, false);
  const missing = [...values].filter((value) => !docs.includes(`\`${value}\``) && !docs.includes(` ${value} `));
  assert.equal(missing, []);
});

test('docs/recipe-language.md lists every built-in recipe and every diagnostic code', () => {
  assert.equal(listBuiltinRecipes().filter((recipe) => !definesKey(recipe.name)).map((recipe) => recipe.name), []);
  assert.equal(RECIPE_DIAGNOSTIC_CODES.filter((code) => !definesKey(code)), []);
});

test.run();
