import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadRecipe, parseRecipe, renderRecipeDiagnostic, type RecipeDiagnosticCode } from '../src/index.js';

const HEAD = 'name: bad\nmatch:\n  - annotation: .libos.instructions.syscall\n';

/** Each malformed recipe gives exactly one error: its code and its `file:line:col: message`. */
const CASES: { what: string; text: string; code: RecipeDiagnosticCode; message: string }[] = [
  // wrong types
  { what: 'a list where a map belongs', text: '- name: x\n', code: 'RECIPE_SCHEMA', message: 'bad.yaml:1:1: recipe: expected a map, got a list' },
  { what: 'match as a number', text: 'name: bad\nmatch: 3\n', code: 'RECIPE_SCHEMA', message: 'bad.yaml:2:8: match: expected a list, got the number 3' },
  { what: 'prefer as a string', text: `${HEAD}trampoline:\n  prefer: rel32\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:5:11: trampoline.prefer: expected a list, got the string 'rel32'" },
  { what: 'padding as a string', text: 'name: bad\nmatch:\n  - instruction: syscall\n    padding: three\n', code: 'RECIPE_SCHEMA', message: "bad.yaml:4:14: match[0].padding: expected a number, got the string 'three'" },
  { what: 'an empty description', text: 'name: bad\ndescription:\nmatch:\n  - instruction: syscall\n', code: 'RECIPE_SCHEMA', message: 'bad.yaml:2:1: description: expected a string, got an empty value' },
  { what: 'a slot offset as text', text: `${HEAD}entry:\n  slot: { segment: gs, offset: x }\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:5:32: entry.slot.offset: expected a number, got the string 'x'" },
  { what: 'a syscall given as true', text: 'name: bad\nmatch:\n  - instruction: syscall\n    syscalls: { include: [true] }\n', code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:27: match[0].syscalls.include[0]: expected a number or a system call name, got true' },
  // unknown keys, with a did-you-mean when one is close
  { what: 'a misspelt abi key', text: `${HEAD}abi:\n  flgs: preserve\n`, code: 'RECIPE_UNKNOWN_KEY', message: "bad.yaml:5:3: abi.flgs: unknown key 'flgs' (did you mean 'flags'?); allowed keys: flags, red-zone, vector-state, rcx-r11" },
  { what: 'a camelCase key', text: `${HEAD}abi:\n  redZone: unused\n`, code: 'RECIPE_UNKNOWN_KEY', message: "bad.yaml:5:3: abi.redZone: unknown key 'redZone' (did you mean 'red-zone'?); allowed keys: flags, red-zone, vector-state, rcx-r11" },
  { what: 'an unknown top-level key', text: `${HEAD}colour: blue\n`, code: 'RECIPE_UNKNOWN_KEY', message: "bad.yaml:4:1: colour: unknown key 'colour'; allowed keys: name, description, extends, match, trampoline, abi, stub, entry, native" },
  { what: 'a misspelt rule key', text: 'name: bad\nmatch:\n  - instruction: syscall\n    preceeded-by: mov-eax-imm\n', code: 'RECIPE_UNKNOWN_KEY', message: "bad.yaml:4:5: match[0].preceeded-by: unknown key 'preceeded-by' (did you mean 'preceded-by'?); allowed keys: annotation, instruction, padding, preceded-by, sections, symbols, syscalls" },
  { what: 'a misspelt rule source', text: 'name: bad\nmatch:\n  - instructions: syscall\n', code: 'RECIPE_UNKNOWN_KEY', message: "bad.yaml:3:5: match[0].instructions: unknown key 'instructions' (did you mean 'instruction'?); allowed keys: annotation, instruction, padding, preceded-by, sections, symbols, syscalls" },
  { what: 'a misspelt entry kind', text: `${HEAD}entry: { adress: 0x1000 }\n`, code: 'RECIPE_UNKNOWN_KEY', message: "bad.yaml:4:10: entry.adress: unknown key 'adress' (did you mean 'address'?); allowed keys: handler, symbol, address, slot, pointer" },
  { what: 'a misspelt filter key', text: 'name: bad\nmatch:\n  - instruction: syscall\n    symbols: { exlude: [a] }\n', code: 'RECIPE_UNKNOWN_KEY', message: "bad.yaml:4:16: match[0].symbols.exlude: unknown key 'exlude' (did you mean 'exclude'?); allowed keys: include, exclude" },
  // bad enum values, listing the allowed values
  { what: 'a misspelt flags policy', text: `${HEAD}abi:\n  flags: clober\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:5:10: abi.flags: 'clober' is not allowed (did you mean 'clobber'?); allowed values: preserve, preserve-all, clobber, clobber-if-dead" },
  { what: 'an unknown variant', text: `${HEAD}trampoline:\n  fallback: [abs64, jump]\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:5:21: trampoline.fallback[1]: 'jump' is not allowed; allowed values: rel32, rel32-site, abs64, displace, trap" },
  { what: 'an unknown stub', text: `${HEAD}stub: slow\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:4:7: stub: 'slow' is not allowed; allowed values: fast, seed" },
  { what: 'an unknown entry keyword', text: `${HEAD}entry: tarce\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:4:8: entry: 'tarce' is not allowed (did you mean 'trace'?); allowed values: passthrough, trace, or a map with one of the keys handler, symbol, address, slot, pointer" },
  { what: 'an unknown annotation section', text: 'name: bad\nmatch:\n  - annotation: .libos.syscalls\n', code: 'RECIPE_SCHEMA', message: "bad.yaml:3:17: match[0].annotation: '.libos.syscalls' is not allowed; allowed values: .libos.instructions.syscall, .libos.instructions.syscall.pcrel" },
  { what: 'an unknown segment', text: `${HEAD}entry: { slot: { segment: es, offset: 24 } }\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:4:27: entry.slot.segment: 'es' is not allowed (did you mean 'fs'?); allowed values: fs, gs" },
  { what: 'a call that cannot be native', text: `${HEAD}native: [fork]\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:4:10: native[0]: 'fork' is not allowed (did you mean 'vfork'?); allowed values: rt_sigreturn, vfork, clone, clone3" },
  { what: 'a list where a keyword belongs', text: `${HEAD}abi: { flags: [preserve] }\n`, code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:15: abi.flags: expected one of preserve, preserve-all, clobber, clobber-if-dead, got a list' },
  { what: 'a number for the entry', text: `${HEAD}entry: 3\n`, code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:8: entry: expected one of passthrough, trace, or a map with one of the keys handler, symbol, address, slot, pointer, got the number 3' },
  { what: 'an empty entry', text: `${HEAD}entry:\n`, code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:1: entry: expected one of passthrough, trace, or a map with one of the keys handler, symbol, address, slot, pointer, got an empty value' },
  { what: 'a fractional padding', text: 'name: bad\nmatch:\n  - instruction: syscall\n    padding: 2.5\n', code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:14: match[0].padding: expected an integer, got the number 2.5' },
  // YAML syntax
  { what: 'two documents', text: `${HEAD}---\nname: other\n`, code: 'RECIPE_YAML', message: "bad.yaml:4:1: YAML: a recipe file holds one YAML document, and this '---' starts a second" },
  { what: 'an unclosed flow list', text: 'name: bad\nmatch: [\n', code: 'RECIPE_YAML', message: 'bad.yaml:3:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]' },
  { what: 'a duplicate key', text: `${HEAD}stub: fast\nstub: seed\n`, code: 'RECIPE_YAML', message: 'bad.yaml:5:1: YAML: Map keys must be unique' },
  { what: 'a tab for indentation', text: 'name: bad\nmatch:\n\t- instruction: syscall\n', code: 'RECIPE_YAML', message: 'bad.yaml:3:1: YAML: Tabs are not allowed as indentation' },
  // missing name or match, bad values
  { what: 'no name', text: 'match:\n  - instruction: syscall\n', code: 'RECIPE_SCHEMA', message: "bad.yaml:1:1: missing required key 'name'" },
  { what: 'no match', text: '# a recipe\nname: bad\n', code: 'RECIPE_SCHEMA', message: "bad.yaml:2:1: missing required key 'match' (only a recipe with 'extends' may leave it out)" },
  { what: 'an empty match list', text: 'name: bad\nmatch: []\n', code: 'RECIPE_SCHEMA', message: 'bad.yaml:2:8: match: must not be empty' },
  { what: 'an empty file', text: '', code: 'RECIPE_SCHEMA', message: "bad.yaml:1:1: the recipe is empty: it needs at least 'name' and 'match'" },
  { what: 'a name in capitals', text: 'name: Glibc\nmatch:\n  - instruction: syscall\n', code: 'RECIPE_SCHEMA', message: "bad.yaml:1:7: name: must match [a-z0-9][a-z0-9-]* (lower-case letters, digits, dashes), got the string 'Glibc'" },
  { what: 'a rule with no source', text: 'name: bad\nmatch:\n  - padding: 3\n', code: 'RECIPE_SCHEMA', message: "bad.yaml:3:5: match[0]: a rule needs 'annotation' or 'instruction' to say where its sites come from" },
  { what: 'a rule with two sources', text: 'name: bad\nmatch:\n  - annotation: .libos.instructions.syscall\n    instruction: syscall\n', code: 'RECIPE_SCHEMA', message: "bad.yaml:4:18: match[0].instruction: a rule takes its sites from either 'annotation' or 'instruction', not both" },
  { what: 'padding on an annotation rule', text: `${HEAD}    padding: 3\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:4:14: match[0].padding: 'padding' applies to instruction rules only (an annotation gives each site's length)" },
  { what: 'a negative padding', text: 'name: bad\nmatch:\n  - instruction: syscall\n    padding: -1\n', code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:14: match[0].padding: must be at least 0, got the number -1' },
  { what: 'an empty prefer list', text: `${HEAD}trampoline: { prefer: [] }\n`, code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:23: trampoline.prefer: must not be empty' },
  { what: 'a variant listed twice', text: `${HEAD}trampoline: { prefer: [rel32, rel32] }\n`, code: 'RECIPE_SCHEMA', message: "bad.yaml:4:31: trampoline.prefer[1]: 'rel32' is listed twice" },
  { what: 'an entry map with two kinds', text: `${HEAD}entry: { symbol: a, pointer: b }\n`, code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:30: entry.pointer: an entry map has exactly one key, got symbol and pointer' },
  { what: 'an empty entry map', text: `${HEAD}entry: {}\n`, code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:8: entry: an entry map needs one of handler, symbol, address, slot, pointer' },
  { what: 'an address beyond 64 bits', text: `${HEAD}entry: { address: 0x10000000000000000 }\n`, code: 'RECIPE_SCHEMA', message: 'bad.yaml:4:19: entry.address: 0x10000000000000000 does not fit in 64 bits' },
  // a bad syscall name
  { what: 'a misspelt syscall name', text: 'name: bad\nmatch:\n  - instruction: syscall\n    syscalls: { include: [getppid, getpidd] }\n', code: 'RECIPE_UNKNOWN_SYSCALL', message: "bad.yaml:4:36: match[0].syscalls.include[1]: 'getpidd' is not an x86-64 system call name (did you mean 'getpid'?)" },
  { what: 'a syscall name of another architecture', text: 'name: bad\nmatch:\n  - instruction: syscall\n    syscalls:\n      exclude:\n        - socketcall\n', code: 'RECIPE_UNKNOWN_SYSCALL', message: "bad.yaml:6:11: match[0].syscalls.exclude[0]: 'socketcall' is not an x86-64 system call name" },
];

for (const { what, text, code, message } of CASES) {
  test(`one error for ${what}`, () => {
    const result = parseRecipe(text, 'bad.yaml');
    assert.is(result.recipe, undefined);
    assert.equal(result.errors.map(String), [message]);
    assert.is(result.errors[0]?.code, code);
    assert.is(result.errors[0]?.severity, 'error');
  });
}

test('every fault of a file is reported, in file order', () => {
  const text = 'name: bad\nmatch:\n  - instruction: syscall\nabi:\n  flags: none\n  red-zone: unusd\nstub: 3\n';
  const result = parseRecipe(text, 'bad.yaml');
  assert.equal(
    result.errors.map((error) => `${error.line}:${error.col} ${error.path.join('.')}`),
    ['5:10 abi.flags', '6:13 abi.red-zone', '7:7 stub'],
  );
});

test('a diagnostic carries the path of the field as data', () => {
  const result = parseRecipe(`${HEAD}abi:\n  flags: clober\n`, 'bad.yaml');
  const error = result.errors[0];
  assert.ok(error);
  assert.equal(error.path, ['abi', 'flags']);
  assert.is(error.file, 'bad.yaml');
  assert.is(error.line, 5);
  assert.is(error.col, 10);
});

test('an error inside an anchored value points at the anchor', () => {
  const text = 'name: bad\nmatch:\n  - instruction: syscall\n    symbols: &names { include: [3] }\n  - instruction: syscall\n    sections: *names\n';
  const result = parseRecipe(text, 'bad.yaml');
  assert.equal(result.errors.map((error) => `${error.line}:${error.col}`), ['4:33', '4:33']);
});

test('warnings: variants that are never tried, and syscall numbers not in the table', () => {
  const text = 'name: warn\nmatch:\n  - instruction: syscall\n    syscalls: { include: [39, 999] }\ntrampoline:\n  prefer: [rel32, trap]\n  fallback: [rel32-site]\n';
  const result = parseRecipe(text, 'warn.yaml');
  assert.equal(result.errors, []);
  assert.ok(result.recipe);
  assert.equal(result.warnings.map(String), [
    "warn.yaml:7:14: trampoline.fallback[0]: 'rel32-site' comes after 'trap', which fits every site, so it is never tried",
    'warn.yaml:4:31: match[0].syscalls.include[1]: 999 is not in the x86-64 system call table',
  ]);
  assert.ok(result.warnings.every((warning) => warning.severity === 'warning'));
  assert.equal(result.warnings.map((warning) => warning.code), ['RECIPE_REDUNDANT', 'RECIPE_UNKNOWN_SYSCALL']);
});

test('renderRecipeDiagnostic shows the line with a caret under the column', () => {
  const text = `${HEAD}abi:\n  flags: clober\n`;
  const error = parseRecipe(text, 'bad.yaml').errors[0];
  assert.ok(error);
  assert.is(
    renderRecipeDiagnostic(error, text),
    [
      "bad.yaml:5:10: abi.flags: 'clober' is not allowed (did you mean 'clobber'?); allowed values: preserve, preserve-all, clobber, clobber-if-dead",
      '  5 |   flags: clober',
      '    |          ^',
    ].join('\n'),
  );
  assert.is(renderRecipeDiagnostic(error), String(error));
});

test('a recipe path that is a directory: RECIPE_NOT_FOUND saying so, the path named once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'libos-recipe-dir-'));
  try {
    const path = join(dir, 'r.yaml');
    mkdirSync(path); // a directory named like a recipe
    const [error] = loadRecipe(path).errors;
    assert.is(error?.code, 'RECIPE_NOT_FOUND');
    assert.is(error?.message, 'cannot read the recipe: it is a directory');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
