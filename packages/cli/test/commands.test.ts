import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { cli, ensureBuilt, fingerprint, root, tempDir } from './support.js';

let fx: Fixtures;
let dir: string;

test.before(async () => {
  ensureBuilt();
  fx = await buildFixtures();
  dir = tempDir();
});

function json<T = Record<string, unknown>>(text: string): T {
  return JSON.parse(text) as T;
}

interface SiteRow {
  va: string;
  offset: number;
  section: string;
  symbol: string | null;
  instruction: string;
  rule: string;
  room: number;
  syscall: number | null;
  variant: string | null;
  reason: string;
}

test('--version prints the package version', () => {
  const run = cli(['--version']);
  assert.is(run.status, 0);
  const pkg = json<{ version: string }>(readFileSync(join(root, 'packages/cli/package.json'), 'utf8'));
  assert.is(run.stdout, `libos-patch ${pkg.version}\n`);
});

test('--help lists every command; each command has --help', () => {
  const run = cli(['--help']);
  assert.is(run.status, 0);
  for (const name of ['sites', 'plan', 'apply', 'verify', 'revert', 'recipes', 'schema']) {
    assert.match(run.stdout, new RegExp(`^  ${name} `, 'm'));
    const help = cli([name, '--help']);
    assert.is(help.status, 0, name);
    assert.match(help.stdout, new RegExp(`^Usage: libos-patch ${name}`), name);
    assert.match(help.stdout, /Exit status:/);
    assert.is(help.stderr, '');
  }
  assert.match(cli(['apply', '--help']).stdout, /handler:<file>, symbol:<name>, address:<hex>/);
});

test('no command: the help on stderr, exit 2', () => {
  const run = cli([]);
  assert.is(run.status, 2);
  assert.is(run.stdout, '');
  assert.match(run.stderr, /^Usage: libos-patch <command>/);
});

test('recipes: one line each, glibc-rfc among them; --json', () => {
  const run = cli(['recipes']);
  assert.is(run.status, 0);
  const lines = run.stdout.trimEnd().split('\n');
  assert.ok(lines.some((l) => /^glibc-rfc\s+\S/.test(l)), run.stdout);
  const listed = json<{ recipes: { name: string; description: string; path: string }[] }>(cli(['recipes', '--json']).stdout);
  assert.is(lines.length, listed.recipes.length);
  const rfc = listed.recipes.find((r) => r.name === 'glibc-rfc');
  assert.ok(rfc && rfc.description.length > 0 && rfc.path.endsWith('glibc-rfc.yaml'));
});

test('schema: the recipes\' JSON Schema', () => {
  const run = cli(['schema']);
  assert.is(run.status, 0);
  const schema = json<{ $schema: string; type: string; properties: Record<string, unknown> }>(run.stdout);
  assert.is(schema.type, 'object');
  for (const key of ['name', 'match', 'trampoline', 'entry']) assert.ok(key in schema.properties, key);
  assert.is(cli(['schema', '--json']).stdout, run.stdout);
});

test('sites with a recipe: the annotated sites of every linked fixture, each with its variant', () => {
  for (const info of fx.list) {
    if (info.name === 'object' || info.name === 'objectPcrel') continue;
    const run = cli(['sites', info.path, '--recipe', 'glibc-rfc', '--json']);
    assert.is(run.status, 0, `${info.name}: ${run.stderr}`);
    const { sites } = json<{ sites: SiteRow[] }>(run.stdout);
    assert.is(sites.length, info.sites, info.name);
    for (const site of sites) {
      assert.match(site.va, /^0x[0-9a-f]+$/);
      assert.is(site.instruction, 'syscall');
      assert.is(site.room, 12, `${info.name} ${site.va}`);
      assert.match(site.rule, /^match\[\d\]: annotation \.libos\.instructions\.syscall/);
      assert.is(site.variant, 'rel32', `${info.name} ${site.va}: ${site.reason}`);
      assert.ok(site.section.length > 0 && site.reason.length > 0);
    }
  }
});

test('sites: the human table has a row per site with address, section, symbol, rule, room, variant', () => {
  const run = cli(['sites', fx.nonPie, '--recipe', 'glibc-rfc']);
  assert.is(run.status, 0);
  const [header, ...rows] = run.stdout.trimEnd().split('\n');
  assert.match(header ?? '', /^ADDRESS\s+SECTION\s+SYMBOL\s+RULE\s+ROOM\s+VARIANT\s+REASON$/);
  assert.is(rows.length, 12);
  assert.ok(rows.some((r) => /^0x[0-9a-f]+\s+\.text\s+c_write\s+match\[0\]: annotation \.libos\.instructions\.syscall\s+12\s+rel32\s/.test(r)), run.stdout);
  assert.not.match(run.stdout, /\x1b\[/, 'no colour into a pipe');
});

test('sites without a recipe: every decoded syscall instruction as well as the annotated ones', () => {
  const run = cli(['sites', fx.static, '--json']);
  assert.is(run.status, 0, run.stderr);
  const { sites } = json<{ sites: SiteRow[] }>(run.stdout);
  const annotated = sites.filter((s) => s.rule.includes('annotation'));
  const decoded = sites.filter((s) => s.rule.includes('instruction syscall'));
  assert.is(annotated.length, 12);
  assert.ok(decoded.length > 20, `libc's own syscalls: ${decoded.length}`);
  // glibc's raw syscalls have no NOP room: glibc-rfc's variants do not fit them, and the reason says so.
  const tight = decoded.filter((s) => s.room < 12);
  assert.ok(tight.length > 0);
  for (const s of tight) {
    assert.is(s.variant === null || s.variant === 'abs64' || s.variant === 'trap', true, `${s.va}: ${s.variant}`);
    assert.ok(s.reason.length > 0);
  }
});

test('sites on /bin/ls (no annotations, dynamically linked): runs and prints valid JSON', () => {
  const run = cli(['sites', '/bin/ls', '--json']);
  assert.is(run.status, 0, run.stderr);
  const { sites } = json<{ sites: SiteRow[] }>(run.stdout);
  assert.ok(Array.isArray(sites));
  const withRecipe = cli(['sites', '/bin/ls', '--recipe', 'glibc-rfc', '--json']);
  assert.is(withRecipe.status, 0);
  assert.equal(json<{ sites: SiteRow[] }>(withRecipe.stdout).sites, []);
});

test('apply on /bin/ls (no sites for glibc-rfc): the output still runs, the input is untouched', () => {
  const before = fingerprint('/bin/ls');
  const out = join(dir, 'ls');
  const run = cli(['apply', '/bin/ls', '--recipe', 'glibc-rfc', '-o', out, '--json']);
  assert.is(run.status, 0, run.stderr);
  const summary = json<{ sites: number; patched: number; refused: unknown[] }>(run.stdout);
  assert.is(summary.sites, 0);
  assert.is(summary.patched, 0);
  assert.equal(fingerprint('/bin/ls'), before);
  const ran = spawnSync(out, ['-d', '/'], { encoding: 'utf8' });
  assert.is(ran.status, 0, ran.stderr);
  assert.is(ran.stdout, '/\n');
  assert.is(cli(['verify', out]).status, 0);
});

test('plan: the PatchPlan as JSON on stdout, or into -o', () => {
  const run = cli(['plan', fx.pie, '--recipe', 'glibc-rfc']);
  assert.is(run.status, 0, run.stderr);
  const plan = json<{ schema: string; patches: { va: string; variant: string }[]; refused: unknown[]; segments: unknown[]; stats: { patched: number } }>(run.stdout);
  assert.match(plan.schema, /^libos-patch\/plan@/);
  assert.is(plan.patches.length, 12);
  assert.is(plan.stats.patched, 12);
  assert.equal(plan.refused, []);
  assert.ok(plan.segments.length > 0);

  const out = join(dir, 'plan.json');
  const toFile = cli(['plan', fx.pie, '--recipe', 'glibc-rfc', '-o', out]);
  assert.is(toFile.status, 0);
  assert.is(toFile.stdout, '');
  assert.is(readFileSync(out, 'utf8'), run.stdout, 'deterministic');
  assert.is(cli(['plan', fx.pie, '--recipe', 'glibc-rfc', '--json']).stdout, run.stdout, '--json is accepted and changes nothing');
});

test('plan --entry overrides the recipe\'s entry', () => {
  const plan = json<{ entry: { kind: string } }>(cli(['plan', fx.nonPie, '--recipe', 'glibc-rfc', '--entry', 'trace']).stdout);
  assert.is(plan.entry.kind, 'trace');
});

test('apply: writes a runnable rewritten binary, keeps the mode, leaves the input alone; --json summary', () => {
  for (const info of fx.list) {
    if (info.run === undefined) continue;
    const before = fingerprint(info.path);
    const out = join(dir, `${info.name}.patched`);
    const run = cli(['apply', info.path, '--recipe', 'glibc-rfc', '-o', out, '--json']);
    assert.is(run.status, 0, `${info.name}: ${run.stderr}`);
    const summary = json<{ sites: number; patched: number; byVariant: Record<string, number>; refused: unknown[]; bytesAdded: number; output: string; entry: string }>(run.stdout);
    assert.is(summary.sites, info.sites, info.name);
    assert.is(summary.patched, info.sites);
    assert.is(summary.byVariant.rel32, info.sites);
    assert.equal(summary.refused, []);
    assert.ok(summary.bytesAdded > 0);
    assert.is(summary.output, out);
    assert.is(summary.entry, 'passthrough');
    assert.equal(fingerprint(info.path), before, `${info.name}: input untouched`);
    assert.is(statSync(out).mode & 0o777, before.mode & 0o777, 'mode kept');
    const ran = spawnSync(out, [], { encoding: 'utf8', env: { ...process.env, ...info.run.env } });
    assert.is(ran.status, info.run.status, `${info.name} runs: ${ran.stderr}`);
    assert.is(ran.stdout, info.run.stdout);
  }
});

test('apply on a shared library: the program that loads the rewritten library runs as before', () => {
  const libDir = join(dir, 'lib');
  mkdirSync(libDir);
  const run = cli(['apply', fx.shared, '--recipe', 'glibc-rfc', '--entry', 'trace', '-o', join(libDir, 'libannot.so'), '--json']);
  assert.is(run.status, 0, run.stderr);
  const expected = fx.list.find((f) => f.name === 'sharedMain')?.run;
  assert.ok(expected);
  const ran = spawnSync(fx.sharedMain, [], { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: libDir } });
  assert.is(ran.status, expected.status, ran.stderr);
  assert.is(ran.stdout, expected.stdout);
  assert.match(ran.stderr, /^\[libos\] 1 write\(/m, 'the library\'s calls were traced');
});

test('apply: the text summary names sites, variants, relaxations, refusals, bytes added', () => {
  const out = join(dir, 'summary');
  const run = cli(['apply', fx.nonPie, '--recipe', 'glibc-rfc', '-o', out]);
  assert.is(run.status, 0, run.stderr);
  for (const field of [/^sites found\s+12$/m, /^patched\s+12 \(rel32 12\)$/m, /^relaxations\s+/m, /^refused\s+0$/m, /^bytes added\s+\d+$/m]) {
    assert.match(run.stdout, field);
  }
});

test('apply --entry trace: the rewritten program reports each intercepted call', () => {
  const out = join(dir, 'traced');
  const run = cli(['apply', fx.nonPie, '--recipe', 'glibc-rfc', '--entry', 'trace', '-o', out, '--json']);
  assert.is(run.status, 0, run.stderr);
  assert.is(json<{ entry: string }>(run.stdout).entry, 'trace');
  const ran = spawnSync(out, [], { encoding: 'utf8' });
  assert.is(ran.status, 42);
  assert.match(ran.stderr, /\[libos\] 1 write\(/);
  assert.match(ran.stderr, /\[libos\] 231 exit_group\(/);
});

test('apply --entry symbol/address/passthrough reach the plan; a symbol the file lacks is left to a loader', () => {
  const plan = (entry: string) => cli(['plan', fx.nonPie, '--recipe', 'glibc-rfc', '--entry', entry]);
  assert.is(json<{ entry: { kind: string } }>(plan('passthrough').stdout).entry.kind, 'passthrough');
  // plan: the reference to a symbol outside the file is a relocation in the plan, for a loader.
  const external = plan('symbol:no_such_function');
  assert.is(external.status, 0, external.stderr);
  const relocations = json<{ relocations: { symbol: string; type: string }[] }>(external.stdout).relocations;
  assert.ok(relocations.length > 0 && relocations.every((r) => r.symbol === 'no_such_function' && r.type === 'pc32'));
  // apply: such a plan cannot be written as is.
  const missing = cli(['apply', fx.nonPie, '--recipe', 'glibc-rfc', '--entry', 'symbol:no_such_function', '-o', join(dir, 'unresolved.out')]);
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /^libos-patch: error: .*non-pie: PLAN_UNRESOLVED: .*no_such_function/);
  const address = plan('address:0x401000');
  assert.is(address.status, 0, address.stderr);
  assert.is(json<{ entry: { kind: string; va: string } }>(address.stdout).entry.va, '0x401000');
});

test('apply --strict: refused sites give exit 1 and nothing written; without it the output is written', () => {
  const recipe = join(dir, 'rel32-only.yaml');
  writeFileSync(recipe, 'name: rel32-only\ndescription: decoded syscalls, rel32 or nothing\nmatch:\n  - instruction: syscall\ntrampoline:\n  prefer: [rel32]\n  fallback: []\n');
  const out = join(dir, 'strict.out');
  const strict = cli(['apply', fx.static, '--recipe', recipe, '-o', out, '--strict', '--json']);
  assert.is(strict.status, 1, strict.stderr);
  const summary = json<{ refused: { va: string; reason: string }[]; output: string | null }>(strict.stdout);
  assert.ok(summary.refused.length > 0);
  assert.ok(summary.refused.every((r) => /^0x/.test(r.va) && r.reason.length > 0));
  assert.is(summary.output, null);
  assert.equal(strict.errLines, [`libos-patch: error: ${fx.static}: ${summary.refused.length} of ${summary.refused.length + 12} sites refused (--strict): nothing written`]);
  assert.throws(() => statSync(out));

  const lax = cli(['apply', fx.static, '--recipe', recipe, '-o', out]);
  assert.is(lax.status, 0);
  assert.match(lax.stdout, /^refused, by reason:$/m);
  assert.ok(statSync(out).size > 0);
});

test('apply --timings: one line on stderr with every stage, the JSON on stdout unchanged', () => {
  const out = join(dir, 'timed.out');
  const r = cli(['apply', fx.pie, '--recipe', 'glibc-rfc', '-o', out, '--json', '--timings']);
  assert.is(r.status, 0, r.stderr);
  assert.is(json<{ output: string }>(r.stdout).output, out);
  assert.is(r.errLines.length, 1, r.stderr);
  const line = r.errLines[0]!;
  assert.match(line, /^libos-patch: timings: Node's start \d+ ms, loading the CLI \d+ ms, loading the command \d+ ms, reading \d+ ms, finding sites \d+ ms, planning \d+ sites \d+ ms, writing \d+ ms, saving \d+ ms, total \d+ ms$/);
  // The stages add up to the total, give or take the rounding of each.
  const figures = [...line.matchAll(/ (\d+) ms/g)].map((m) => Number(m[1]));
  const total = figures.pop()!;
  const sum = figures.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - total) <= figures.length, `${sum} vs ${total}`);
  assert.ok(statSync(out).size > 0);
});

test('verify: ok on a fresh output (exit 0, --json); a changed byte is exit 1 with its range', () => {
  const out = join(dir, 'verify-me');
  assert.is(cli(['apply', fx.pie, '--recipe', 'glibc-rfc', '-o', out]).status, 0);
  const ok = cli(['verify', out, '--json']);
  assert.is(ok.status, 0, ok.stderr);
  const report = json<{ ok: boolean; changed: unknown[] }>(ok.stdout);
  assert.is(report.ok, true);
  assert.equal(report.changed, []);
  assert.match(cli(['verify', out]).stdout, /: ok: unchanged/);

  const bytes = readFileSync(out);
  bytes[0x1000] = (bytes[0x1000] ?? 0) ^ 0xff;
  const changed = join(dir, 'verify-changed');
  writeFileSync(changed, bytes);
  const bad = cli(['verify', changed, '--json']);
  assert.is(bad.status, 1);
  assert.equal(bad.errLines, [`libos-patch: error: ${changed}: ${json<{ changed: unknown[] }>(bad.stdout).changed.length} byte ranges changed since it was rewritten`]);
  const badReport = json<{ ok: boolean; changed: { offset: number; length: number }[] }>(bad.stdout);
  assert.is(badReport.ok, false);
  assert.ok(badReport.changed.some((c) => c.offset <= 0x1000 && 0x1000 < c.offset + c.length));
});

test('revert: gives back the original byte for byte, with its mode', () => {
  const out = join(dir, 'to-revert');
  assert.is(cli(['apply', fx.static, '--recipe', 'glibc-rfc', '-o', out]).status, 0);
  const original = join(dir, 'reverted');
  const run = cli(['revert', out, '-o', original, '--json']);
  assert.is(run.status, 0, run.stderr);
  assert.is(json<{ size: number }>(run.stdout).size, statSync(fx.static).size);
  assert.ok(readFileSync(original).equals(readFileSync(fx.static)));
  assert.is(statSync(original).mode & 0o777, statSync(fx.static).mode & 0o777);
});

test('apply keeps a non-executable input non-executable', () => {
  const input = join(dir, 'rw-only');
  copyFileSync(fx.nonPie, input);
  chmodSync(input, 0o640);
  const out = join(dir, 'rw-only.out');
  assert.is(cli(['apply', input, '--recipe', 'glibc-rfc', '-o', out]).status, 0);
  assert.is(statSync(out).mode & 0o777, 0o640);
});

test('colour: never into a pipe, never with NO_COLOR', () => {
  const run = cli(['recipes'], { env: { NO_COLOR: '1' } });
  assert.not.match(run.stdout, /\x1b\[/);
});

test.run();
