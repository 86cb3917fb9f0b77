// Small corrupt files, each pinning one error code and the file offset it reports.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ElfError, PT_GNU_PROPERTY, PT_GNU_STACK, PT_LOAD, PT_NOTE, readElf, SHT_DYNSYM, SHT_NOTE, SHT_RELR, SHT_SYMTAB, type ElfFile,
} from '../src/index.js';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { missingRelr, testNeeding } from '../../../fixtures/prerequisites.js';
import { expectElfError, writer } from './helpers/expect-error.js';
import { tool } from './helpers/tools.js';

const test = suite('error codes');
let fx: Fixtures;
const cache = new Map<string, Uint8Array>();

/** A fresh copy of a fixture to corrupt. */
function copyOf(path: string): Uint8Array {
  let b = cache.get(path);
  if (b === undefined) cache.set(path, (b = new Uint8Array(readFileSync(path))));
  return b.slice();
}

test.before(async () => {
  fx = await buildFixtures();
});

test('ELF_BAD_MAGIC: not an ELF, and an empty file', () => {
  expectElfError(() => readElf(new TextEncoder().encode('#!/bin/sh\necho hi\n')), 'ELF_BAD_MAGIC', 0);
  expectElfError(() => readElf(new Uint8Array(0)), 'ELF_BAD_MAGIC', 0);
  expectElfError(() => readElf(new Uint8Array([0x7f, 0x45, 0x4c])), 'ELF_BAD_MAGIC', 0);
});

test('ELF_TRUNCATED: the file ends inside the ELF header', () => {
  expectElfError(() => readElf(copyOf(fx.pie).subarray(0, 40)), 'ELF_TRUNCATED', 40);
});

test('ELF_BAD_CLASS, ELF_BAD_ENDIAN, ELF_BAD_VERSION, ELF_BAD_TYPE, ELF_BAD_MACHINE: e_ident and header fields', () => {
  const cases: [number, (w: ReturnType<typeof writer>) => void, Parameters<typeof expectElfError>[1]][] = [
    [4, (w) => w.u8(4, 1), 'ELF_BAD_CLASS'],
    [5, (w) => w.u8(5, 2), 'ELF_BAD_ENDIAN'],
    [6, (w) => w.u8(6, 0), 'ELF_BAD_VERSION'],
    [16, (w) => w.u16(16, 4), 'ELF_BAD_TYPE'],
    [18, (w) => w.u16(18, 3), 'ELF_BAD_MACHINE'],
  ];
  for (const [offset, mutate, code] of cases) {
    const b = copyOf(fx.pie);
    mutate(writer(b));
    expectElfError(() => readElf(b), code, offset);
  }
});

test('header tables: bad offsets, entry sizes, counts, truncation, e_shstrndx', () => {
  const len = copyOf(fx.pie).length;
  const mutate = (f: (w: ReturnType<typeof writer>) => void): Uint8Array => {
    const b = copyOf(fx.pie);
    f(writer(b));
    return b;
  };
  expectElfError(() => readElf(mutate((w) => w.u64(40, BigInt(len + 100)))), 'ELF_BAD_OFFSET', 40, 'e_shoff past the end');
  expectElfError(() => readElf(mutate((w) => w.u64(40, 0xffffffffffffff00n))), 'ELF_BAD_OFFSET', 40, 'e_shoff absurd');
  expectElfError(() => readElf(mutate((w) => w.u64(32, 8n))), 'ELF_BAD_OFFSET', 32, 'e_phoff inside the ELF header');
  expectElfError(() => readElf(mutate((w) => w.u64(32, w.u64At(40)))), 'ELF_BAD_OFFSET', 32, 'program headers overlap section headers');
  expectElfError(() => readElf(mutate((w) => w.u16(58, 40))), 'ELF_BAD_ENTSIZE', 58, 'e_shentsize');
  expectElfError(() => readElf(mutate((w) => w.u16(54, 32))), 'ELF_BAD_ENTSIZE', 54, 'e_phentsize');
  const shoff = Number(writer(copyOf(fx.pie)).u64At(40));
  expectElfError(() => readElf(mutate((w) => w.u16(60, 0xfff0))), 'ELF_BAD_COUNT', shoff, 'e_shnum absurd');
  expectElfError(() => readElf(mutate((w) => w.u16(62, 0xfe00))), 'ELF_BAD_INDEX', 62, 'e_shstrndx');
  expectElfError(() => readElf(copyOf(fx.pie).subarray(0, shoff + 64 * 3)), 'ELF_TRUNCATED', shoff, 'section table cut');
  // As many program headers as the file's size could hold, but not starting at phoff 64.
  expectElfError(() => readElf(mutate((w) => w.u16(56, Math.floor(len / 56)))), 'ELF_TRUNCATED', 64, 'program headers run off the end');
  expectElfError(() => readElf(mutate((w) => w.u16(56, 0xfffe))), 'ELF_BAD_COUNT', 64, 'e_phnum absurd');
});

function sectionHeader(elf: ElfFile, name: string): number {
  return elf.section(name)!.headerOffset;
}

test('sections: bytes outside the file, bad names, a name table that is not one', () => {
  const base = readElf(copyOf(fx.pie));
  const text = sectionHeader(base, '.text');
  let b = copyOf(fx.pie);
  writer(b).u64(text + 24, BigInt(b.length));
  expectElfError(() => readElf(b), 'ELF_BAD_OFFSET', text + 24, '.text offset at end of file');
  b = copyOf(fx.pie);
  writer(b).u64(text + 32, 0x7fffffffn);
  expectElfError(() => readElf(b), 'ELF_BAD_OFFSET', text + 24, '.text size past the end');
  b = copyOf(fx.pie);
  writer(b).u32(text, 0xffffff);
  expectElfError(() => readElf(b), 'ELF_BAD_STRING', text, '.text name index');
  b = copyOf(fx.pie);
  writer(b).u16(62, base.section('.text')!.index);
  expectElfError(() => readElf(b), 'ELF_BAD_INDEX', 62, 'e_shstrndx names .text');
});

test('segments: PT_LOAD with memsz < filesz, bytes outside the file', () => {
  const base = readElf(copyOf(fx.pie));
  const load = base.segments.find((p) => p.type === PT_LOAD && p.filesz > 0)!;
  let b = copyOf(fx.pie);
  writer(b).u64(load.headerOffset + 40, 1n);
  expectElfError(() => readElf(b), 'ELF_BAD_SEGMENT', load.headerOffset + 40, 'memsz < filesz');
  b = copyOf(fx.pie);
  writer(b).u64(load.headerOffset + 32, BigInt(b.length) + 1n);
  expectElfError(() => readElf(b), 'ELF_BAD_OFFSET', load.headerOffset + 8, 'filesz past the end');
});

test('symbols: entry size, name index, unterminated name, string table link', () => {
  const base = readElf(copyOf(fx.pie));
  const symtab = base.sections.find((s) => s.type === SHT_SYMTAB)!;
  let b = copyOf(fx.pie);
  writer(b).u64(symtab.headerOffset + 56, 16n);
  expectElfError(() => readElf(b).symbols, 'ELF_BAD_ENTSIZE', symtab.headerOffset + 56, 'symtab entsize');
  b = copyOf(fx.pie);
  writer(b).u64(symtab.headerOffset + 32, BigInt(symtab.size - 5));
  expectElfError(() => readElf(b).symbols, 'ELF_BAD_ENTSIZE', symtab.headerOffset + 32, 'symtab size not a multiple');
  b = copyOf(fx.pie);
  const third = symtab.offset + 3 * 24;
  writer(b).u32(third, 0x7fffffff);
  expectElfError(() => readElf(b).symbols, 'ELF_BAD_STRING', third, 'symbol name index');
  // The last string of .strtab loses its NUL: the last symbol's name runs off the table.
  b = copyOf(fx.pie);
  const strtab = base.sections[symtab.link]!;
  b[strtab.offset + strtab.size - 1] = 0x41;
  const victim = base.symbols.reduce((best, s) => (s.name !== '' && strtabIndex(b, symtab.offset, s.index) > strtabIndex(b, symtab.offset, best.index) ? s : best));
  expectElfError(() => readElf(b).symbols, 'ELF_BAD_STRING', symtab.offset + victim.index * 24, 'unterminated name');
  b = copyOf(fx.pie);
  writer(b).u32(symtab.headerOffset + 40, base.section('.text')!.index);
  expectElfError(() => readElf(b).symbols, 'ELF_BAD_INDEX', symtab.headerOffset + 40, 'symtab links to .text');
});

test('functions() checks the symbol tables in the order .symbols does: .symtab first, each table whole', () => {
  const base = readElf(copyOf(fx.pie));
  const symtab = base.sections.find((s) => s.type === SHT_SYMTAB)!;
  const dynsym = base.sections.find((s) => s.type === SHT_DYNSYM)!;
  // Both tables broken: .symtab's link and .dynsym's entry size. The first is the one reported.
  const b = copyOf(fx.pie);
  writer(b).u32(symtab.headerOffset + 40, base.section('.text')!.index);
  writer(b).u64(dynsym.headerOffset + 56, 23n);
  expectElfError(() => readElf(b).functions(), 'ELF_BAD_INDEX', symtab.headerOffset + 40, 'symtab links to .text');
  expectElfError(() => readElf(b).symbols, 'ELF_BAD_INDEX', symtab.headerOffset + 40, 'the same from .symbols');
  // A function symbol's absurd st_size, as .symbols reports it.
  const c = copyOf(fx.pie);
  const fn = base.symbols.find((s) => s.type === 2 && s.section !== 0)!;
  writer(c).u32(symtab.offset + fn.index * 24 + 20, 0x7fffffff);
  expectElfError(() => readElf(c).functions(), 'ELF_BAD_OFFSET', symtab.offset + fn.index * 24 + 16, 'st_size');
});

test('ELF_BAD_STRING: many symbols named by one long non-ASCII name (each read a copy) stop at a bound, typed', async () => {
  // One function named by 100,000 'é' (200 KB of UTF-8) and 20 others whose st_name is made to
  // point at that name: 20 copies of 200 KB is past what a table of 200 KB can mean.
  const dir = mkdtempSync(join(tmpdir(), 'libos-strtab-'));
  const long = 'é'.repeat(100000);
  const others = Array.from({ length: 20 }, (_, i) => `int f${i}(int x) { return x + ${i}; }`).join('\n');
  writeFileSync(join(dir, 's.c'), `int ${long}(int x) { return x; }\n${others}\nint main(int c, char **v) { (void)v; return ${long}(c) + f0(c); }\n`);
  await tool('gcc', ['-O0', join(dir, 's.c'), '-o', join(dir, 's')]);
  const b = new Uint8Array(readFileSync(join(dir, 's')));
  rmSync(dir, { recursive: true, force: true });
  const base = readElf(b.slice());
  const symtab = base.sections.find((s) => s.type === SHT_SYMTAB)!;
  const target = base.symbols.find((s) => s.name === long)!;
  const nameIndex = new DataView(b.buffer, b.byteOffset).getUint32(symtab.offset + target.index * 24, true);
  for (const s of base.symbols.filter((x) => /^f\d+$/.test(x.name))) writer(b).u32(symtab.offset + s.index * 24, nameIndex);
  const heap = process.memoryUsage().heapUsed;
  for (const [what, read] of [['symbols', () => readElf(b).symbols], ['functions', () => readElf(b).functions()]] as const) {
    const err = (() => {
      try {
        read();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ElfError && err.code === 'ELF_BAD_STRING', `${what}: ${String(err)}`);
    assert.match((err as ElfError).message, /overlap far more than a linker writes/);
    // At a symbol of .symtab: its entry's offset.
    assert.ok((err as ElfError).offset! >= symtab.offset && (err as ElfError).offset! < symtab.offset + symtab.size, `${what}: at a symbol`);
  }
  assert.ok(process.memoryUsage().heapUsed - heap < 100e6, 'no copy per symbol beyond the bound');
});

function strtabIndex(b: Uint8Array, symtabOffset: number, index: number): number {
  return writer(b).u32At(symtabOffset + index * 24);
}

test('notes: a note larger than its section', () => {
  const base = readElf(copyOf(fx.pie));
  const note = base.sections.find((s) => s.type === SHT_NOTE)!;
  const b = copyOf(fx.pie);
  writer(b).u32(note.offset + 4, 0x10000);
  expectElfError(() => readElf(b).notes, 'ELF_BAD_NOTE', note.offset);
});

testNeeding(test, await missingRelr(), 'RELR: a bitmap before any address, addresses that go back', () => {
  const path = fx.relr!;
  const base = readElf(copyOf(path));
  const relr = base.sections.find((s) => s.type === SHT_RELR)!;
  let b = copyOf(path);
  writer(b).u64(relr.offset, 0xffn);
  expectElfError(() => readElf(b).relocations, 'ELF_BAD_RELOCATION', relr.offset, 'bitmap first');
  b = copyOf(path);
  // Second word: an address below the first.
  const w = writer(b);
  const firstWord = w.u64At(relr.offset);
  const second = relr.offset + 8;
  if ((w.u64At(second) & 1n) === 0n) w.u64(second, firstWord - 16n);
  else w.u64(second, firstWord - 16n);
  expectElfError(() => readElf(b).relocations, 'ELF_BAD_RELOCATION', second, 'decreasing address');
});

testNeeding(test, await missingRelr(), 'RELR: more relocated words than the file holds (two extra loads map the file twice)', () => {
  const path = fx.relr!;
  const base = readElf(copyOf(path));
  const b = copyOf(path);
  const w = writer(b);
  const size = b.length;
  // Two program headers the reader does not need become loads of the whole file at A and A + size.
  const spare = base.segments.filter((p) => p.type === PT_NOTE || p.type === PT_GNU_STACK || p.type === PT_GNU_PROPERTY).slice(0, 2);
  assert.is(spare.length, 2, 'two spare program headers');
  const A = 0x40000000n;
  const aligned = BigInt(Math.ceil(size / 0x1000) * 0x1000);
  spare.forEach((p, i) => {
    w.u32(p.headerOffset, PT_LOAD);
    w.u32(p.headerOffset + 4, 6);
    w.u64(p.headerOffset + 8, 0n);
    w.u64(p.headerOffset + 16, A + BigInt(i) * aligned);
    w.u64(p.headerOffset + 24, A + BigInt(i) * aligned);
    w.u64(p.headerOffset + 32, BigInt(size));
    w.u64(p.headerOffset + 40, BigInt(size));
  });
  // The RELR section, moved over .text: the address A, then all-ones bitmaps up past A + 2 * size.
  const relr = base.sections.find((s) => s.type === SHT_RELR)!;
  const text = base.section('.text')!;
  const words = 1 + Math.ceil((2 * size) / 8 / 63);
  assert.ok(words * 8 <= text.size, '.text holds the words');
  w.u64(text.offset, A);
  for (let i = 1; i < words; i++) w.u64(text.offset + 8 * i, 0xffffffffffffffffn);
  w.u64(relr.headerOffset + 24, BigInt(text.offset));
  w.u64(relr.headerOffset + 32, BigInt(words * 8));
  const err = expectElfError(() => readElf(b).relocations, 'ELF_BAD_RELOCATION', text.offset + 8 * (1 + Math.floor((Math.floor(size / 8) - 1) / 63)), 'past the file\'s words');
  assert.match(err.message, /more words than the file holds/);
});

test('eh_frame: an entry longer than the section, a CIE pointer leaving it', () => {
  const base = readElf(copyOf(fx.stripped));
  const eh = base.section('.eh_frame')!;
  let b = copyOf(fx.stripped);
  writer(b).u32(eh.offset, 0x7ffffff0);
  expectElfError(() => readElf(b).functions(), 'ELF_BAD_EH_FRAME', eh.offset, 'CIE length');
  b = copyOf(fx.stripped);
  const cieLength = writer(b).u32At(eh.offset);
  const fde = eh.offset + 4 + cieLength;
  writer(b).u32(fde + 4, 0x7fff0000);
  expectElfError(() => readElf(b).functions(), 'ELF_BAD_EH_FRAME', fde + 4, 'CIE pointer');
});

test('annotations: a .o table entry relocated by the wrong type', () => {
  const base = readElf(copyOf(fx.object));
  const rela = base.section('.rela.libos.instructions.syscall')!;
  const table = base.section('.libos.instructions.syscall')!;
  const b = copyOf(fx.object);
  writer(b).u32(rela.offset + 8, 10); // R_X86_64_32 instead of R_X86_64_64
  expectElfError(() => readElf(b).syscallAnnotations(), 'ELF_BAD_ANNOTATION', table.offset);
});

test('ELF_VA_UNMAPPED: readVa outside every PT_LOAD, or across the end of one', () => {
  const elf = readElf(copyOf(fx.nonPie));
  const e = expectElfError(() => elf.readVa(0xdead0000n, 4), 'ELF_VA_UNMAPPED', -1);
  assert.is(e.va, 0xdead0000n);
  const load = elf.segments.find((p) => p.type === PT_LOAD)!;
  expectElfError(() => elf.readVa(load.va + BigInt(load.filesz) - 2n, 4), 'ELF_VA_UNMAPPED', -1, 'across the end');
  expectElfError(() => elf.readVa(load.va, -1), 'ELF_VA_UNMAPPED', -1, 'negative length');
  assert.is(elf.vaToOffset(0xdead0000n), undefined);
  assert.is(elf.readVa(load.va, 4).length, 4);
});

test('ElfError carries code, offset and a message naming both', () => {
  const e = expectElfError(() => readElf(new Uint8Array(10)), 'ELF_BAD_MAGIC', 0);
  assert.instance(e, Error);
  assert.instance(e, ElfError);
  assert.match(e.message, /^ELF_BAD_MAGIC at offset 0x0: /);
});

test.run();
