// Rewritten fixtures run like the originals: every annotated site jumps to a per-site trampoline
// that makes the syscall and jumps back. Checked by running them (directly, through ld.so, and
// the shared library under an unpatched main), and with readelf, objdump and gdb.
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { missingRelr, testNeeding } from '../../../fixtures/prerequisites.js';
import { PT_LOAD, PT_PHDR, readElf, revertElf, verifyElf, writeElf } from '../src/index.js';
import { jumpEdit, load, run, removeTempDirs, tempDir, writeExecutable } from './write-support.js';

const test = suite('writeElf: rewritten programs run');
const LDSO = '/lib64/ld-linux-x86-64.so.2';
let fx: Fixtures;
let dir: string;

test.before(async () => {
  fx = await buildFixtures();
  dir = tempDir();
});

const PROGRAMS = ['nonPie', 'pie', 'static', 'staticPie', 'pcrelPie', 'stripped'] as const;

for (const name of PROGRAMS) {
  test(`${name}: same stdout and exit status as the original, and as expected`, async () => {
    const { elf } = load(fx[name]);
    const { edit } = jumpEdit(elf);
    assert.ok(edit.patches.length >= 12, 'every fixture program has at least 12 sites');
    const out = writeExecutable(dir, `${name}.out`, writeElf(elf, edit));
    const before = await run(fx[name], []);
    const after = await run(out, []);
    assert.is(before.status, 42);
    assert.is(after.stdout, before.stdout);
    assert.is(after.status, before.status);
    assert.is(after.stderr, '');
  });

  test(`${name}: the layout the kernel and ld.so need`, () => {
    const { elf } = load(fx[name]);
    const out = readElf(writeElf(elf, jumpEdit(elf).edit));
    const loads = out.segments.filter((s) => s.type === PT_LOAD);
    for (let i = 1; i < loads.length; i++) {
      assert.ok(loads[i]!.va >= loads[i - 1]!.va + BigInt(loads[i - 1]!.memsz), `PT_LOAD ${i} sorted and not overlapping`);
    }
    for (const l of loads) assert.is(BigInt(l.offset) % 0x1000n, l.va % 0x1000n, 'offset % page == va % page');
    // The table is mapped: some PT_LOAD's file range holds e_phoff, and PT_PHDR (when the file
    // has one) says where, with the same va - offset delta as that PT_LOAD.
    const holder = loads.find((l) => l.offset <= out.header.phoff && out.header.phoff + out.header.phnum * 56 <= l.offset + l.filesz);
    assert.ok(holder !== undefined, 'a PT_LOAD holds the program header table');
    const phdr = out.segments.find((s) => s.type === PT_PHDR);
    const hadPhdr = elf.segments.some((s) => s.type === PT_PHDR);
    assert.is(phdr !== undefined, hadPhdr, 'PT_PHDR kept exactly when the original had one');
    if (phdr !== undefined) {
      assert.is(phdr.offset, out.header.phoff);
      assert.is(phdr.va - BigInt(phdr.offset), holder!.va - BigInt(holder!.offset));
      assert.is(phdr.filesz, out.header.phnum * 56);
      assert.is(out.segments.findIndex((s) => s.type === PT_PHDR) < out.segments.findIndex((s) => s.type === PT_LOAD), true, 'PT_PHDR before every PT_LOAD');
    }
    // Every original segment is still there, unchanged and in the same order; PT_PHDR aside,
    // only PT_LOADs were added.
    const same = (s: { type: number; va: bigint; offset: number; memsz: number }): string => `${s.type}:${s.va}:${s.offset}:${s.memsz}`;
    const original = new Set(elf.segments.map(same));
    const kept = out.segments.filter((s) => s.type !== PT_PHDR && original.has(same(s)));
    assert.equal(kept.map(same), elf.segments.filter((s) => s.type !== PT_PHDR).map(same));
    const added = out.segments.filter((s) => s.type !== PT_PHDR && !original.has(same(s)));
    assert.ok(added.length === 2 && added.every((s) => s.type === PT_LOAD), 'the trampolines and the table are new PT_LOADs');
  });

  test(`${name}: reverts byte for byte, verifies, writes deterministically`, () => {
    const { input, elf } = load(fx[name]);
    const copy = Buffer.from(input);
    const edit = jumpEdit(elf, { metadata: new TextEncoder().encode(`plan for ${name}`) }).edit;
    const a = writeElf(elf, edit);
    const b = writeElf(readElf(readElf(copy).bytes), edit);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), 'two writes give identical bytes');
    assert.ok(input.equals(copy), 'the input buffer is not changed');
    assert.ok(Buffer.from(revertElf(a)).equals(input), 'revert gives back the original');
    const report = verifyElf(a);
    assert.is(report.ok, true);
    assert.equal(report.changed, []);
    assert.is(new TextDecoder().decode(report.metadata), `plan for ${name}`);
  });
}

for (const name of ['pie', 'nonPie'] as const) {
  test(`${name}: runs through ld.so (${LDSO} ./out)`, async () => {
    const { elf } = load(fx[name]);
    const out = writeExecutable(dir, `${name}.ldso`, writeElf(elf, jumpEdit(elf).edit));
    const before = await run(fx[name], []);
    const after = await run(LDSO, [out]);
    assert.is(after.stderr, '');
    assert.is(after.stdout, before.stdout);
    assert.is(after.status, before.status);
  });
}

test('shared: the rewritten library runs under the unpatched main (LD_LIBRARY_PATH)', async () => {
  const { elf, input } = load(fx.shared);
  const { edit } = jumpEdit(elf);
  assert.is(edit.patches.length, 4);
  const libDir = tempDir();
  writeExecutable(libDir, 'libannot.so', writeElf(elf, edit));
  const before = await run(fx.sharedMain, [], { LD_LIBRARY_PATH: fx.dir });
  const after = await run(fx.sharedMain, [], { LD_LIBRARY_PATH: libDir });
  assert.is(before.stdout, 'lib: hello\nlib: pid ok\nlib: uid ok\n');
  assert.is(after.stdout, before.stdout);
  assert.is(after.status, 3);
  assert.is(after.stderr, '');
  // ld.so really loaded the rewritten copy, not the original next to use-lib.
  const traced = await run(fx.sharedMain, [], { LD_LIBRARY_PATH: libDir, LD_DEBUG: 'files' });
  assert.ok(traced.stderr.includes(join(libDir, 'libannot.so')), traced.stderr);
  assert.ok(Buffer.from(revertElf(writeElf(elf, edit))).equals(input));
});

test('shared and every program: readelf -a -W and objdump -d print no warnings; objdump names the trampolines', async () => {
  for (const name of [...PROGRAMS, 'shared'] as const) {
    const { elf } = load(fx[name]);
    const j = jumpEdit(elf);
    const out = writeExecutable(dir, `${name}.tools`, writeElf(elf, j.edit));
    const readelf = await run('readelf', ['-a', '-W', out]);
    assert.is(readelf.stderr, '', `${name}: readelf stderr`);
    assert.ok(readelf.stdout.includes('.libos.text'), `${name}: readelf lists .libos.text`);
    assert.ok(readelf.stdout.includes('.libos.plan'), `${name}: readelf lists .libos.plan`);
    const objdump = await run('objdump', ['-d', '-w', out]);
    assert.is(objdump.stderr, '', `${name}: objdump stderr`);
    assert.ok(objdump.stdout.includes('Disassembly of section .libos.text:'), `${name}: objdump disassembles .libos.text`);
    j.names.forEach((n, i) => {
      assert.ok(objdump.stdout.includes(`<${n}>:`), `${name}: objdump names ${n}`);
      // The site now jumps to its trampoline, and the trampoline jumps back to site + 12.
      const site = j.sites[i]!.toString(16);
      const line = objdump.stdout.split('\n').find((l) => l.trimStart().startsWith(`${site}:`));
      assert.ok(line?.includes(`jmp`) && line.includes(`<${n}>`), `${name}: site ${site} jumps to ${n}: ${line}`);
    });
  }
});

test('gdb stops in a trampoline by its symbol', async () => {
  for (const name of ['pie', 'static'] as const) {
    const { elf } = load(fx[name]);
    const j = jumpEdit(elf);
    const out = writeExecutable(dir, `${name}.gdb`, writeElf(elf, j.edit));
    const g = await run('gdb', ['-nx', '-batch', '-ex', `break ${j.names[0]}`, '-ex', 'run', '-ex', 'bt', out]);
    assert.match(g.stdout, new RegExp(`Breakpoint 1, 0x[0-9a-f]+ in ${j.names[0]} \\(\\)`), `${name}: ${g.stdout}\n${g.stderr}`);
    assert.match(g.stdout, new RegExp(`#0 +0x[0-9a-f]+ in ${j.names[0]} \\(\\)`), `${name}: bt starts in the trampoline`);
  }
});

testNeeding(test, await missingRelr(), 'relr (a PIE with -z pack-relative-relocs) runs rewritten', async () => {
  const path = fx.relr!;
  const { elf } = load(path);
  const out = writeExecutable(dir, 'relr.out', writeElf(elf, jumpEdit(elf).edit));
  const before = await run(path, []);
  const after = await run(out, []);
  assert.is(after.stdout, before.stdout);
  assert.is(after.status, 42);
});

test.after(removeTempDirs);

test.run();
