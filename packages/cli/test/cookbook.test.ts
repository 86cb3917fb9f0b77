// Runs what docs/cookbook.md shows, so the cookbook cannot drift from the code.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { missingFile, testNeeding } from '../../../fixtures/prerequisites.js';
import { cli, ensureBuilt, root, tempDir } from './support.js';

const cookbook = join(root, 'examples', 'cookbook');
let dir: string;
let hello: string;

test.before(() => {
  ensureBuilt();
  dir = tempDir('libos-cookbook-');
  hello = join(dir, 'hello');
  execFileSync('gcc', ['-O2', '-no-pie', '-I', join(root, 'fixtures', 'include'), '-o', hello, join(root, 'examples', 'hello.c')]);
});

test('a recipe for your LibOS: my-libos.yaml extends glibc-rfc and hands every call to the C handler', () => {
  const out = join(dir, 'hello.mine');
  const run = cli(['apply', hello, '--recipe', join(cookbook, 'my-libos.yaml'), '-o', out, '--strict', '--json']);
  assert.is(run.status, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { recipe: { name: string }; entry: string; patched: number; sites: number };
  assert.is(summary.recipe.name, 'my-libos');
  assert.match(summary.entry, /^handler:.*fake-identity\.c$/);
  assert.is(summary.patched, summary.sites);
  const ran = spawnSync(out, [], { encoding: 'utf8' });
  assert.is(ran.status, 0, ran.stderr);
  assert.match(ran.stdout, /^my pid is 4242$/m);
  assert.match(ran.stdout, /^my uid is 1000$/m);
  assert.match(ran.stderr, /^\[fake-identity\] calls seen: \d+$/m);
});

testNeeding(test, missingFile('/bin/busybox', 'Debian: apt-get install busybox-static'), 'a binary built without annotations: busybox through unannotated, traced', () => {
  const out = join(dir, 'traced', 'busybox');
  mkdirSync(join(dir, 'traced'));
  const run = cli(['apply', '/bin/busybox', '--recipe', 'unannotated', '--entry', 'trace', '-o', out, '--json']);
  assert.is(run.status, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { sites: number; patched: number };
  assert.ok(summary.sites > 0 && summary.patched > 0);
  const ran = spawnSync(out, ['echo', 'hi'], { encoding: 'utf8' });
  assert.is(ran.status, 0, ran.stderr);
  assert.is(ran.stdout, 'hi\n');
  assert.match(ran.stderr, /^\[libos\] 1 write\(0x1, /m);
});

test('a C handler given with --entry handler:<file> overrides the recipe\'s entry', () => {
  const out = join(dir, 'hello.fake');
  const run = cli(['apply', hello, '--recipe', 'glibc-rfc', '--entry', `handler:${join(cookbook, 'fake-identity.c')}`, '-o', out]);
  assert.is(run.status, 0, run.stderr);
  const ran = spawnSync(out, [], { encoding: 'utf8' });
  assert.match(ran.stdout, /^my pid is 4242$/m);
});

test('a handler that does not compile: exit 2, one line naming PLAN_HANDLER', () => {
  const broken = join(dir, 'broken.c');
  execFileSync('sh', ['-c', `printf 'long libos_handler(long nr) { return nr +; }\\n' > ${broken}`]);
  const run = cli(['apply', hello, '--recipe', 'glibc-rfc', '--entry', `handler:${broken}`, '-o', join(dir, 'never')]);
  assert.is(run.status, 2);
  assert.is(run.errLines.length, 1, run.stderr);
  assert.match(run.errLines[0] ?? '', /^libos-patch: error: .*hello: PLAN_HANDLER: /);
});

test('@libos/encoder from your own tool: the seed\'s call-site sequence', () => {
  const out = execFileSync(process.execPath, [join(cookbook, 'encode-call-site.mjs'), '0x401063', '0x405010'], { cwd: root, encoding: 'utf8' });
  assert.is(out, 'site 0x401063 -> stub 0x405010: 48 8d 0d 05 00 00 00 e9 a1 3f 00 00\n');
});

test('feeding a plan to another tool: apply-plan.mjs writes what libos-patch apply writes', () => {
  const plan = join(dir, 'plan.json');
  assert.is(cli(['plan', hello, '--recipe', 'glibc-rfc', '--entry', 'trace', '-o', plan]).status, 0);
  const viaPlan = join(dir, 'hello.via-plan');
  const out = execFileSync(process.execPath, [join(cookbook, 'apply-plan.mjs'), hello, plan, viaPlan], { cwd: root, encoding: 'utf8' });
  assert.match(out, /^map   \.libos\.text\s+bias\+0x[0-9a-f]+  rx  /m);
  assert.match(out, /^patch bias\+0x[0-9a-f]+ \(file offset \d+\) rel32: 488d0d05000000e9/m);
  const viaCli = join(dir, 'hello.via-cli');
  assert.is(cli(['apply', hello, '--recipe', 'glibc-rfc', '--entry', 'trace', '-o', viaCli]).status, 0);
  assert.ok(readFileSync(viaPlan).equals(readFileSync(viaCli)), 'byte for byte');
  const ran = spawnSync(viaPlan, [], { encoding: 'utf8' });
  assert.match(ran.stderr, /^\[libos\] 39 getpid\(/m);
});

test('a plan whose entry the loader provides: the relocation is listed and no file is written', () => {
  const plan = join(dir, 'plan-external.json');
  assert.is(cli(['plan', hello, '--recipe', 'glibc-rfc', '--entry', 'symbol:libos_syscall', '-o', plan]).status, 0);
  const out = execFileSync(process.execPath, [join(cookbook, 'apply-plan.mjs'), hello, plan, join(dir, 'external.out')], { cwd: root, encoding: 'utf8' });
  assert.match(out, /^reloc \.libos\.text\+0x[0-9a-f]+ pc32 libos_syscall /m);
  assert.match(out, /^not writing .*: the plan leaves \d+ reference\(s\) for a loader to resolve$/m);
  assert.not.ok(existsSync(join(dir, 'external.out')));
});

test('apply-plan.mjs refuses a plan made for another file', () => {
  const plan = join(dir, 'plan-other.json');
  assert.is(cli(['plan', hello, '--recipe', 'glibc-rfc', '-o', plan]).status, 0);
  const run = spawnSync(process.execPath, [join(cookbook, 'apply-plan.mjs'), '/bin/true', plan, join(dir, 'x')], { cwd: root, encoding: 'utf8' });
  assert.is(run.status, 2);
  assert.match(run.stderr, /not the file this plan was made for/);
});

test.run();
