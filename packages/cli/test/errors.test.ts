import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { cli, ensureBuilt, errorLines, fingerprint, tempDir, type CliRun } from './support.js';

let fx: Fixtures;
let dir: string;
let notElf: string;
let truncated: string;
let corrupt: string;
let badRecipe: string;

test.before(async () => {
  ensureBuilt();
  fx = await buildFixtures();
  dir = tempDir();
  notElf = join(dir, 'notes.txt');
  writeFileSync(notElf, 'just some text, not a program\n');
  // The first 64 bytes: a valid ELF header whose tables lie past the end of the file.
  truncated = join(dir, 'truncated');
  writeFileSync(truncated, readFileSync(fx.pie).subarray(0, 64));
  // e_shnum = 0xffff: more section headers than the file can hold.
  corrupt = join(dir, 'corrupt');
  const bytes = readFileSync(fx.pie);
  bytes.writeUInt16LE(0xffff, 60);
  writeFileSync(corrupt, bytes);
  badRecipe = join(dir, 'bad.yaml');
  writeFileSync(badRecipe, 'name: bad\ndescription: a typo on line 4\nmatch:\n  - instruction: syscal\n');
});

/** Exactly one stderr line, the error, in the documented form, and no stack trace. */
function failsWith(run: CliRun, status: number, pattern: RegExp): void {
  assert.is(run.status, status, run.stderr);
  assert.is(run.errLines.length, 1, `one line on stderr: ${run.stderr}`);
  assert.is(errorLines(run).length, 1, run.stderr);
  assert.match(run.errLines[0] ?? '', pattern);
  assert.not.match(run.stderr, /^\s+at /m, 'no stack trace');
  assert.is(run.stdout, '', 'nothing on stdout');
}

/** Run `args` on `input` and check the input's bytes and mtime are as before. */
function untouched(input: string, args: string[]): CliRun {
  const before = fingerprint(input);
  const run = cli(args);
  assert.equal(fingerprint(input), before, `${input} untouched by ${args.join(' ')}`);
  return run;
}

const COMMANDS_ON_A_FILE = (file: string, out: string): string[][] => [
  ['sites', file],
  ['sites', file, '--recipe', 'glibc-rfc', '--json'],
  ['plan', file, '--recipe', 'glibc-rfc'],
  ['apply', file, '--recipe', 'glibc-rfc', '-o', out],
  ['verify', file],
  ['revert', file, '-o', out],
];

test('a missing file: exit 2, "<file>: cannot read the input: no such file or directory"', () => {
  const missing = join(dir, 'no-such-file');
  for (const args of COMMANDS_ON_A_FILE(missing, join(dir, 'out'))) {
    failsWith(cli(args), 2, new RegExp(`^libos-patch: error: ${missing}: cannot read the input: no such file or directory$`));
  }
});

test('a directory as input: exit 2', () => {
  failsWith(cli(['sites', dir]), 2, /: cannot read the input: is a directory$/);
});

test('a device as input (/dev/zero, never ending): exit 2 at once, not read', () => {
  for (const args of COMMANDS_ON_A_FILE('/dev/zero', join(dir, 'out'))) {
    failsWith(cli(args), 2, /^libos-patch: error: \/dev\/zero: cannot read the input: not a regular file \(a device, a pipe or a socket\)$/);
  }
});

test('not an ELF file: exit 2 with ELF_BAD_MAGIC, the input untouched', () => {
  for (const args of COMMANDS_ON_A_FILE(notElf, join(dir, 'out'))) {
    const run = untouched(notElf, args);
    failsWith(run, 2, new RegExp(`^libos-patch: error: ${notElf}: ELF_BAD_MAGIC at offset 0x0: `));
  }
});

test('a truncated ELF file: exit 2 with the reader\'s code and offset', () => {
  for (const args of COMMANDS_ON_A_FILE(truncated, join(dir, 'out')).slice(0, 4)) {
    failsWith(untouched(truncated, args), 2, new RegExp(`^libos-patch: error: ${truncated}: ELF_[A-Z_]+ at offset 0x[0-9a-f]+: `));
  }
});

test('a corrupt ELF file (impossible section count): exit 2, ELF_BAD_COUNT', () => {
  for (const args of COMMANDS_ON_A_FILE(corrupt, join(dir, 'out')).slice(0, 4)) {
    failsWith(untouched(corrupt, args), 2, new RegExp(`^libos-patch: error: ${corrupt}: ELF_BAD_COUNT at offset 0x[0-9a-f]+: `));
  }
});

test('a recipe with a mistake: exit 2 at its file:line:col, the input untouched', () => {
  const out = join(dir, 'never-written');
  for (const args of [
    ['apply', fx.pie, '--recipe', badRecipe, '-o', out],
    ['plan', fx.pie, '--recipe', badRecipe],
    ['sites', fx.pie, '--recipe', badRecipe],
  ]) {
    failsWith(untouched(fx.pie, args), 2, new RegExp(`^libos-patch: error: ${badRecipe}:4:18: match\\[0\\]\\.instruction: 'syscal' is not allowed \\(did you mean 'syscall'\\?\\)`));
  }
});

test('a recipe that is not YAML, and an unknown key: exit 2 with line:col', () => {
  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, 'name: broken\ndescription: [unclosed\n');
  failsWith(cli(['plan', fx.pie, '--recipe', broken]), 2, new RegExp(`^libos-patch: error: ${broken}:\\d+:\\d+: `));
  const unknown = join(dir, 'unknown-key.yaml');
  writeFileSync(unknown, 'name: u\ndescription: d\nmatch:\n  - annotation: .libos.instructions.syscall\nstub: fast\nentyr: trace\n');
  failsWith(cli(['plan', fx.pie, '--recipe', unknown]), 2, new RegExp(`^libos-patch: error: ${unknown}:6:1: .*entyr`));
});

test('a recipe that does not exist, by name or by path: exit 2', () => {
  failsWith(cli(['plan', fx.pie, '--recipe', 'glibc-rcf']), 2, /^libos-patch: error: glibc-rcf: no built-in recipe 'glibc-rcf' \(did you mean 'glibc-rfc'\?\)/);
  const missing = join(dir, 'missing.yaml');
  failsWith(cli(['plan', fx.pie, '--recipe', missing]), 2, new RegExp(`^libos-patch: error: ${missing}: cannot read the recipe`));
});

test('an output path that cannot be written: exit 2, nothing left behind, the input untouched', () => {
  const inDir = join(dir, 'out-dir');
  mkdirSync(inDir);
  for (const [out, reason] of [
    [join(dir, 'no-such-dir', 'out'), 'no such file or directory'],
    [inDir, 'is a directory'],
    [join(notElf, 'out'), 'a component of the path is not a directory'],
  ] as const) {
    const run = untouched(fx.pie, ['apply', fx.pie, '--recipe', 'glibc-rfc', '-o', out]);
    failsWith(run, 2, new RegExp(`^libos-patch: error: ${out}: cannot write the output: ${reason}$`));
  }
  assert.equal(readdirSync(dir).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left behind');
  const planOut = join(dir, 'no-such-dir', 'plan.json');
  failsWith(cli(['plan', fx.pie, '--recipe', 'glibc-rfc', '-o', planOut]), 2, /cannot write the output: no such file or directory$/);
});

test('the output may not be the input', () => {
  const input = join(dir, 'self');
  copyFileSync(fx.pie, input);
  const run = untouched(input, ['apply', input, '--recipe', 'glibc-rfc', '-o', input]);
  failsWith(run, 2, new RegExp(`^libos-patch: error: ${input}: the output would replace the input`));
});

test('verify and revert on a file libos-patch did not write: exit 2, ELF_NO_PLAN', () => {
  failsWith(untouched(fx.pie, ['verify', fx.pie]), 2, /: ELF_NO_PLAN /);
  failsWith(untouched(fx.pie, ['revert', fx.pie, '-o', join(dir, 'r')]), 2, /: ELF_NO_PLAN /);
});

test('an object file cannot be rewritten: exit 2, PLAN_UNSUPPORTED_FILE', () => {
  failsWith(untouched(fx.object, ['apply', fx.object, '--recipe', 'glibc-rfc', '-o', join(dir, 'o')]), 2, /: PLAN_UNSUPPORTED_FILE: /);
});

test('usage errors: one line, exit 2', () => {
  failsWith(cli(['frobnicate']), 2, /^libos-patch: error: unknown command 'frobnicate'; commands: sites, plan, apply/);
  failsWith(cli(['sites']), 2, /^libos-patch: error: missing operand: expected <elf> \(usage: libos-patch sites /);
  failsWith(cli(['sites', 'a', 'b']), 2, /^libos-patch: error: unexpected operand 'b'/);
  failsWith(cli(['sites', fx.pie, '--bogus']), 2, /^libos-patch: error: unknown option '--bogus'/);
  failsWith(cli(['apply', fx.pie, '-o', join(dir, 'x')]), 2, /^libos-patch: error: --recipe R is required/);
  failsWith(cli(['apply', fx.pie, '--recipe', 'glibc-rfc']), 2, /^libos-patch: error: --output OUT is required/);
  failsWith(cli(['plan', fx.pie, '--recipe']), 2, /^libos-patch: error: option '-r, --recipe <value>' argument missing/);
  for (const entry of ['bogus', 'handler:', 'symbol:', 'address:xyz', 'address:']) {
    failsWith(cli(['plan', fx.pie, '--recipe', 'glibc-rfc', '--entry', entry]), 2, new RegExp(`^libos-patch: error: --entry '${entry}': `));
  }
});

test('--debug adds the stack trace after the one line', () => {
  const run = cli(['sites', notElf, '--debug']);
  assert.is(run.status, 2);
  assert.match(run.errLines[0] ?? '', /^libos-patch: error: .*ELF_BAD_MAGIC/);
  assert.match(run.stderr, /^\s+at /m);
});

test.run();
