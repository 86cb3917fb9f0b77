import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf } from '@libos/elfkit';
import { findSites } from '@libos/recipe';
import { buildFixtures } from '../../../fixtures/build.js';

const run = promisify(execFile);
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';

test('annotation sites are found with room 12 in every fixture kind', async () => {
  const fixtures = await buildFixtures();
  for (const f of fixtures.list) {
    const table = f.form === 'quad' ? '.libos.instructions.syscall' : '.libos.instructions.syscall.pcrel';
    const elf = readElf(readFileSync(f.path));
    const r = findSites(elf, [{ annotation: table }]);
    assert.is(r.sites.length, f.sites, `${f.name}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
    assert.equal(r.diagnostics, [], f.name);
    for (const s of r.sites) {
      assert.is(s.room, 12, `${f.name} ${s.va.toString(16)}`);
      assert.is(s.rule, `match[0]: annotation ${table}`);
      assert.equal([...elf.bytes.subarray(s.offset, s.offset + 12)], [0x0f, 0x05, ...Array(10).fill(0x90)]);
    }
  }
});

test('linked fixtures: the instruction rule finds every annotated site too, with room 12', async () => {
  const fixtures = await buildFixtures();
  for (const f of fixtures.list) {
    if (f.name === 'object' || f.name === 'objectPcrel') continue;
    const table = f.form === 'quad' ? '.libos.instructions.syscall' : '.libos.instructions.syscall.pcrel';
    const elf = readElf(readFileSync(f.path));
    const r = findSites(elf, [{ annotation: table }, { instruction: 'syscall', padding: 10 }]);
    const annotated = r.sites.filter((s) => s.ruleIndex === 0);
    assert.is(annotated.length, f.sites, f.name);
    const decoded = findSites(elf, [{ instruction: 'syscall', padding: 10 }]).sites;
    const decodedVas = new Set(decoded.map((s) => s.va));
    for (const s of annotated) assert.ok(decodedVas.has(s.va), `${f.name}: annotated ${s.va.toString(16)} decoded too`);
    assert.ok(decoded.every((s) => s.room >= 12), f.name);
  }
});

test('relocatable objects: instruction rules say why they find nothing', async () => {
  const fixtures = await buildFixtures();
  const r = findSites(readElf(readFileSync(fixtures.object)), [{ instruction: 'syscall' }]);
  assert.is(r.sites.length, 0);
  assert.is(r.diagnostics[0]?.code, 'DISCOVER_RELOCATABLE');
});

async function objdumpSyscalls(path: string): Promise<bigint[]> {
  const { stdout } = await run('objdump', ['-d', '--no-show-raw-insn', path], { maxBuffer: 512 * 1024 * 1024 });
  return [...stdout.matchAll(/^\s*([0-9a-f]+):\s+syscall\s*$/gm)].map((m) => BigInt(`0x${m[1]}`));
}

test(`libc.so.6: decoded syscall sites equal objdump -d's syscall instructions`, async () => {
  const objdumpVas = await objdumpSyscalls(LIBC);
  const elf = readElf(readFileSync(LIBC));
  const r = findSites(elf, [{ instruction: 'syscall' }]);
  console.log(`  libc.so.6: objdump ${objdumpVas.length} syscalls; findSites ${r.sites.length} sites, stats ${JSON.stringify(r.stats)}`);
  assert.ok(objdumpVas.length > 100);
  assert.equal(r.sites.map((s) => s.va), objdumpVas);
  assert.is(r.stats.outsideFunctions, 0);
  // Most glibc sites set the number right before: a sanity check of syscallNumberAt at scale.
  const known = r.sites.filter((s) => s.syscallNr !== undefined).length;
  assert.ok(known > r.sites.length / 2, `${known} of ${r.sites.length} numbers known`);
  // Each decoded function once, and only those that hold a candidate.
  assert.ok(r.stats.functionsDecoded <= r.stats.candidates);
});

test('ld.so and a static glibc program (symbols, not FDEs): the same agreement with objdump', async () => {
  const fixtures = await buildFixtures();
  for (const path of ['/lib64/ld-linux-x86-64.so.2', fixtures.static]) {
    const objdumpVas = await objdumpSyscalls(path);
    const r = findSites(readElf(readFileSync(path)), [{ instruction: 'syscall' }]);
    assert.ok(objdumpVas.length > 10, path);
    assert.equal(r.sites.map((s) => s.va), objdumpVas, path);
  }
});

test('node: 0f 05 byte pairs in .text, none of them a syscall', () => {
  const elf = readElf(readFileSync(process.execPath));
  const r = findSites(elf, [{ instruction: 'syscall' }]);
  const text = elf.section('.text');
  assert.ok(text);
  const view = Buffer.from(elf.bytes.buffer, elf.bytes.byteOffset + text.offset, text.size);
  let pairs = 0;
  for (let i = view.indexOf(Buffer.from([0x0f, 0x05])); i >= 0; i = view.indexOf(Buffer.from([0x0f, 0x05]), i + 1)) pairs++;
  console.log(`  node: ${pairs} '0f 05' pairs in .text, ${r.stats.candidates} candidates (0f 05, 0f 34, cd 80), ${r.stats.confirmed} confirmed, ${r.sites.length} sites, ${r.stats.functionsDecoded} functions decoded, ${r.stats.outsideFunctions} outside functions`);
  assert.ok(pairs > 0);
  assert.ok(r.stats.candidates >= pairs);
  assert.is(r.sites.length, 0);
});

test.run();
