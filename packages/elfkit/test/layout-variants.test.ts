// Files laid out in less common but valid ways: extended section numbering, no section headers.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf } from '../src/index.js';
import { buildFixtures } from '../../../fixtures/build.js';
import { writer } from './helpers/expect-error.js';

const test = suite('layout variants');

test('extended numbering: e_shnum 0, e_shstrndx SHN_XINDEX and e_phnum PN_XNUM resolved through section 0', async () => {
  const f = await buildFixtures();
  const original = new Uint8Array(readFileSync(f.pie));
  const ref = readElf(original);
  const b = original.slice();
  const w = writer(b);
  const shoff = ref.header.shoff;
  w.u16(60, 0);
  w.u64(shoff + 32, BigInt(ref.header.shnum)); // section 0 sh_size
  w.u16(62, 0xffff);
  w.u32(shoff + 40, ref.header.shstrndx); // section 0 sh_link
  w.u16(56, 0xffff);
  w.u32(shoff + 44, ref.header.phnum); // section 0 sh_info
  const elf = readElf(b);
  assert.is(elf.header.shnum, ref.header.shnum);
  assert.is(elf.header.shstrndx, ref.header.shstrndx);
  assert.is(elf.header.phnum, ref.header.phnum);
  assert.equal(elf.sections.slice(1).map((s) => s.name), ref.sections.slice(1).map((s) => s.name));
  assert.is(elf.segments.length, ref.segments.length);
  assert.equal(elf.syscallAnnotations(), ref.syscallAnnotations());
});

test('no section headers: segments, dynamic, notes and .eh_frame functions come from program headers', async () => {
  const f = await buildFixtures();
  const original = new Uint8Array(readFileSync(f.stripped));
  const ref = readElf(original);
  const b = original.slice();
  const w = writer(b);
  w.u64(40, 0n);
  w.u16(60, 0);
  w.u16(62, 0);
  const elf = readElf(b);
  assert.is(elf.sections.length, 0);
  assert.equal(elf.segments, ref.segments);
  assert.equal(elf.dynamic, ref.dynamic);
  assert.is(elf.kind, 'pie');
  assert.is(elf.buildId, ref.buildId);
  assert.is(elf.notes.length, ref.notes.length);
  // Through PT_GNU_EH_FRAME -> .eh_frame_hdr -> .eh_frame: the same FDE ranges.
  const ranges = (fs: { start: bigint; end: bigint }[]): string[] => fs.map((x) => `${x.start}-${x.end}`);
  assert.equal(ranges(elf.functions()), ranges(ref.functions()));
  assert.ok(elf.functions().length >= 11);
  assert.equal(elf.symbols, []);
  assert.equal(elf.relocations, []);
  assert.equal(elf.syscallAnnotations(), []);
  assert.equal([...elf.readVa(elf.header.entry, 4)], [...ref.readVa(ref.header.entry, 4)]);
});

test('offsetToVa and vaToOffset are inverse on every PT_LOAD byte range edge', async () => {
  const f = await buildFixtures();
  for (const path of [f.nonPie, f.pie, f.static, f.staticPie, f.shared]) {
    const elf = readElf(readFileSync(path));
    for (const p of elf.segments.filter((x) => x.type === 1 && x.filesz > 0)) {
      for (const delta of [0, 1, p.filesz - 1]) {
        const va = p.va + BigInt(delta);
        const off = elf.vaToOffset(va);
        assert.is(off, p.offset + delta, `${path} va 0x${va.toString(16)}`);
        assert.is(elf.offsetToVa(off!), va);
      }
      // The first byte past the file-backed part (.bss) has no file offset.
      if (p.memsz > p.filesz) assert.is(elf.vaToOffset(p.va + BigInt(p.filesz)), undefined);
    }
  }
});

test('a view at a non-zero byteOffset of a larger buffer reads the same as the file itself', async () => {
  const f = await buildFixtures();
  for (const path of [f.pie, f.object, f.stripped]) {
    const file = new Uint8Array(readFileSync(path));
    const big = new Uint8Array(file.length + 40);
    big.fill(0xcc);
    big.set(file, 13);
    const view = big.subarray(13, 13 + file.length);
    const a = readElf(file);
    const b = readElf(view);
    assert.equal(b.sections, a.sections);
    assert.equal(b.symbols, a.symbols);
    assert.equal(b.relocations, a.relocations);
    assert.equal(b.syscallAnnotations(), a.syscallAnnotations());
    assert.equal(b.functions(), a.functions());
    assert.is(b.buildId, a.buildId);
    if (a.header.type !== 1) assert.equal([...b.readVa(b.header.entry, 8)], [...a.readVa(a.header.entry, 8)]);
  }
});

test('a separate debug file (objcopy --only-keep-debug): NOBITS code, table and .eh_frame read as empty', async () => {
  const f = await buildFixtures();
  const out = join(tmpdir(), `libos-elfkit-debug-${process.pid}`);
  try {
    execFileSync('objcopy', ['--only-keep-debug', f.pie, out]);
    const elf = readElf(readFileSync(out));
    const table = elf.section('.libos.instructions.syscall')!;
    assert.is(table.type, 8, 'the table is NOBITS in a debug file');
    assert.equal(elf.syscallAnnotations(), []);
    assert.ok(elf.symbols.length > 0);
    assert.is(elf.functions().length, readElf(readFileSync(f.pie)).functions().length);
    assert.is(elf.buildId, readElf(readFileSync(f.pie)).buildId);
  } finally {
    rmSync(out, { force: true });
  }
});

test.run();
