// The syscall annotation tables of every fixture, in each form: true site addresses that point at
// `syscall` + 10 NOPs, the expected counts, and the same positions objdump finds.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ET_REL, R_X86_64_RELATIVE, SHT_SYMTAB, readElf, type ElfFile, type Section, type SyscallAnnotation } from '../src/index.js';
import { readAnnotations } from '../src/read/read-annotations.js';
import { buildFixtures, type FixtureInfo } from '../../../fixtures/build.js';
import { missingRelr, testNeeding } from '../../../fixtures/prerequisites.js';
import { parseSyscalls, tool } from './helpers/tools.js';

const SITE_BYTES = Buffer.from('0f0590909090909090909090', 'hex');
const test = suite('syscall annotations');

function siteBytes(elf: ElfFile, a: SyscallAnnotation): Uint8Array {
  if (elf.header.type !== ET_REL) return elf.readVa(a.site, SITE_BYTES.length);
  const s = elf.sections[a.section!]!;
  const at = s.offset + Number(a.site);
  return elf.bytes.subarray(at, at + SITE_BYTES.length);
}

async function checkFixture(fx: FixtureInfo): Promise<void> {
  const elf = readElf(readFileSync(fx.path));
  const list = elf.syscallAnnotations();
  assert.is(list.length, fx.sites, `${fx.name}: annotation count`);
  for (const a of list) {
    const where = `${fx.name} site 0x${a.site.toString(16)}`;
    assert.is(a.form, fx.form, where);
    assert.is(a.length, 12, `${where} length`);
    assert.ok(Buffer.from(siteBytes(elf, a)).equals(SITE_BYTES), `${where}: bytes are syscall + 10 nops`);
    // entryOffset points at the table entry: its length byte follows the address field.
    assert.is(elf.bytes[a.entryOffset + (a.form === 'quad' ? 8 : 4)], a.length, `${where} entryOffset`);
    assert.is(a.section !== undefined, elf.header.type === ET_REL, `${where}: section only in a .o`);
  }
  // objdump finds the same sites: every syscall followed by 10 NOPs, nothing more or less.
  const dump = parseSyscalls(await tool('objdump', ['-d', fx.path]));
  const expected = dump.filter((d) => d.padded).map((d) => `${d.section}:${d.va.toString(16)}`).sort();
  const mine = list.map((a) => `${elf.header.type === ET_REL ? elf.sections[a.section!]!.name : sectionOfVa(elf, a.site)}:${a.site.toString(16)}`).sort();
  assert.equal(mine, expected, `${fx.name}: sites agree with objdump -d`);
}

function sectionOfVa(elf: ElfFile, va: bigint): string {
  return elf.sections.find((s) => s.size > 0 && va >= s.va && va < s.va + BigInt(s.size) && s.va !== 0n)?.name ?? '?';
}

test('every fixture: counts, forms, bytes at each site, objdump agreement', async () => {
  const f = await buildFixtures();
  assert.ok(f.list.length >= 10, 'all fixtures built');
  for (const fx of f.list) await checkFixture(fx);
});

test('PIE quad form: the RELATIVE addend is the truth, not the bytes in place', async () => {
  const f = await buildFixtures();
  const bytes = new Uint8Array(readFileSync(f.pie));
  const before = readElf(bytes).syscallAnnotations().map((a) => a.site);
  const elf = readElf(bytes);
  const relatives = elf.relocations.filter((r) => r.type === R_X86_64_RELATIVE && r.kind === 'rela');
  // Zero every quad in the table, as a linker that leaves addends out of place would.
  for (const a of readElf(bytes).syscallAnnotations()) bytes.fill(0, a.entryOffset, a.entryOffset + 8);
  const after = readElf(bytes).syscallAnnotations().map((a) => a.site);
  assert.equal(after, before);
  assert.ok(after.every((s) => s !== 0n));
  assert.ok(relatives.length >= 12);
});

testNeeding(test, await missingRelr(), 'RELR quad form: every table entry is covered by .relr.dyn and the in-place value is used', async () => {
  const f = await buildFixtures();
  const bytes = new Uint8Array(readFileSync(f.relr!));
  const elf = readElf(bytes);
  const relr = new Set(elf.relocations.filter((r) => r.kind === 'relr').map((r) => r.offset));
  const table = elf.section('.libos.instructions.syscall')!;
  const list = elf.syscallAnnotations();
  for (const a of list) assert.ok(relr.has(table.va + BigInt(a.entryOffset - table.offset)), 'entry relocated by RELR');
  assert.not.ok(elf.relocations.some((r) => r.kind === 'rela' && r.offset >= table.va && r.offset < table.va + BigInt(table.size)));
  // Changing the word in place changes the site: RELR keeps the addend there.
  const first = list[0]!;
  Buffer.from(bytes.buffer, bytes.byteOffset).writeBigUInt64LE(first.site + 0x10n, first.entryOffset);
  assert.is(readElf(bytes).syscallAnnotations()[0]!.site, first.site + 0x10n);
});

test('pcrel form: site = entry va + int32', async () => {
  const f = await buildFixtures();
  for (const path of [f.pcrelPie, f.staticPie]) {
    const elf = readElf(readFileSync(path));
    const s = elf.section('.libos.instructions.syscall.pcrel')!;
    assert.is(elf.section('.libos.instructions.syscall'), undefined);
    for (const a of elf.syscallAnnotations()) {
      const va = s.va + BigInt(a.entryOffset - s.offset);
      const rel = Buffer.from(elf.bytes.buffer, elf.bytes.byteOffset).readInt32LE(a.entryOffset);
      assert.is(a.site, va + BigInt(rel));
      assert.equal([...elf.bytes.subarray(a.entryOffset + 5, a.entryOffset + 8)], [0, 0, 0]);
    }
  }
});

test('.o: sites are section offsets through the table relocations', async () => {
  const f = await buildFixtures();
  for (const path of [f.object, f.objectPcrel]) {
    const elf = readElf(readFileSync(path));
    const names = new Set(elf.syscallAnnotations().map((a) => elf.sections[a.section!]!.name));
    // The helpers live in .text and main in .text.startup at -O2.
    assert.equal([...names].sort(), ['.text', '.text.startup']);
  }
});

// A .o built with -ffunction-sections and a table per function (as `unique` sections): three
// sections a table. Every entry resolves to its own function's section, and the reader visits
// the sections a bounded number of times, not once per entry (a .o of 6,000 tables took 20 s).
test('.o with a table per function: each entry resolves to its function, sections visited a bounded number of times', () => {
  const dir = mkdtempSync(join(tmpdir(), 'libos-annotations-'));
  try {
    const n = 400;
    const asm: string[] = [];
    for (let i = 0; i < n; i++) {
      asm.push(`.section .text.f${i},"ax",@progbits`, `.globl f${i}`, `f${i}:`, '  syscall', '  .fill 10,1,0x90', '  ret');
      const form = i % 2 === 0
        ? ['.section .libos.instructions.syscall,"a",@progbits,unique,' + i, '.balign 8', `.quad f${i}`, '.byte 12']
        : ['.section .libos.instructions.syscall.pcrel,"a",@progbits,unique,' + i, `.long f${i} - .`, '.byte 12', '.byte 0,0,0'];
      asm.push(...form);
    }
    writeFileSync(join(dir, 'many.s'), `${asm.join('\n')}\n`);
    const cc = spawnSync('gcc', ['-c', join(dir, 'many.s'), '-o', join(dir, 'many.o')], { encoding: 'utf8' });
    assert.is(cc.status, 0, cc.stderr);
    const elf = readElf(readFileSync(join(dir, 'many.o')));
    assert.is(elf.header.type, ET_REL);
    assert.ok(elf.sections.length > 3 * n);
    const found = elf.syscallAnnotations();
    assert.is(found.length, n);
    const names = found.map((a) => `${elf.sections[a.section!]!.name}+${a.site}`).sort();
    assert.equal(names, Array.from({ length: n }, (_, i) => `.text.f${i}+0`).sort());

    // The same read, counting each time a section is looked at.
    let visits = 0;
    const counted = new Proxy(elf.sections as Section[], {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) visits++;
        return Reflect.get(target, key, receiver);
      },
    });
    const symtab = elf.sections.find((x) => x.type === SHT_SYMTAB);
    const again = readAnnotations({
      cursor: (elf as unknown as { cursor: never }).cursor,
      type: elf.header.type,
      sections: counted,
      relocations: () => elf.relocations,
      symbolsOf: (table) => (table === symtab ? elf.symbols : []),
    });
    assert.equal(again, found);
    assert.ok(visits < 5 * elf.sections.length, `${visits} section visits for ${elf.sections.length} sections and ${n} entries`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fixture programs run and print what they should', async () => {
  const f = await buildFixtures();
  for (const fx of f.list) {
    if (fx.run === undefined) continue;
    const r = spawnSync(fx.path, [], { encoding: 'utf8', env: { ...process.env, ...fx.run.env } });
    assert.is(r.stdout, fx.run.stdout, `${fx.name} stdout`);
    assert.is(r.status, fx.run.status, `${fx.name} status`);
  }
});

test('notes and build id: every linked fixture has a GNU build id matching readelf -n', async () => {
  const f = await buildFixtures();
  for (const path of [f.nonPie, f.pie, f.static, f.shared, process.execPath]) {
    const elf = readElf(readFileSync(path));
    const text = await tool('readelf', ['-n', path]);
    const ref = /Build ID: ([0-9a-f]+)/.exec(text);
    assert.ok(ref !== null, `${path}: readelf shows a build id`);
    assert.is(elf.buildId, ref![1], path);
    assert.is(elf.notes.length, (text.match(/^  \S.*\s0x[0-9a-f]{8}\t/gm) ?? []).length, `${path}: note count`);
    const property = text.includes('NT_GNU_PROPERTY_TYPE_0');
    assert.is(elf.notes.some((n) => n.name === 'GNU' && n.type === 5), property, `${path}: the GNU property note (8-byte padding)`);
  }
  assert.is(readElf(readFileSync(f.object)).buildId, undefined);
});

test('dynamic section: tags agree with readelf -d', async () => {
  const f = await buildFixtures();
  for (const path of [f.pie, f.shared, f.sharedMain, '/lib/x86_64-linux-gnu/libc.so.6']) {
    const elf = readElf(readFileSync(path));
    const ref = [...(await tool('readelf', ['-W', '-d', path])).matchAll(/^\s*0x([0-9a-f]{16}) \(/gm)].map((m) => Number(BigInt(`0x${m[1]}`)));
    // readelf lists the DT_NULL terminator; the reader stops before it.
    assert.equal(elf.dynamic.map((d) => d.tag), ref.slice(0, -1), path);
  }
});

test('kinds of the fixtures', async () => {
  const f = await buildFixtures();
  const kinds = Object.fromEntries(f.list.map((x) => [x.name, readElf(readFileSync(x.path)).kind]));
  assert.equal(kinds, {
    nonPie: 'exec', pie: 'pie', static: 'static', staticPie: 'static-pie', pcrelPie: 'pie', shared: 'shared',
    sharedMain: 'pie', object: 'relocatable', objectPcrel: 'relocatable', ...(f.relr !== undefined ? { relr: 'pie' } : {}),
    stripped: 'pie',
  });
});

test('system binaries carry no annotation table', () => {
  for (const path of ['/bin/ls', '/lib/x86_64-linux-gnu/libc.so.6']) assert.equal(readElf(readFileSync(path)).syscallAnnotations(), []);
});

test.run();
