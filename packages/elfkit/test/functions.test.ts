// functions(): from symbols, and from .eh_frame FDEs when the file is stripped.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf, type ElfFile } from '../src/index.js';
import { Cursor } from '../src/read/cursor.js';
import { readEhFrame } from '../src/read/read-eh-frame.js';
import { buildFixtures } from '../../../fixtures/build.js';
import { tool } from './helpers/tools.js';

const test = suite('functions');

test('stripped PIE: FDE ranges agree with the unstripped function symbols', async () => {
  const f = await buildFixtures();
  const full = readElf(readFileSync(f.pie));
  const stripped = readElf(readFileSync(f.stripped));
  assert.is(stripped.symbols.length, 0, 'really stripped');
  const fromSymbols = full.functions();
  const fromFdes = stripped.functions();
  assert.ok(fromSymbols.every((x) => x.source === 'symbol'));
  assert.ok(fromFdes.every((x) => x.source === 'eh_frame'));
  const bySymbol = new Map(fromSymbols.map((x) => [x.start, x]));
  const text = full.section('.text')!;
  const inText = fromFdes.filter((r) => r.start >= text.va && r.start < text.va + BigInt(text.size));
  // Outside .text only the PLT stubs have FDEs (no symbols there).
  for (const r of fromFdes) if (!inText.includes(r)) assert.ok(full.section('.plt')!.va <= r.start && r.start < text.va, 'PLT FDE');
  assert.ok(inText.length >= 11);
  for (const r of inText) {
    const s = bySymbol.get(r.start);
    assert.ok(s !== undefined, `FDE at 0x${r.start.toString(16)} starts a function symbol`);
    assert.is(r.end, s!.end, `FDE at 0x${r.start.toString(16)} (${s!.name}) ends where the symbol does`);
  }
  // Every function we wrote (C and assembler) has its FDE.
  const covered = new Set(fromFdes.map((r) => bySymbol.get(r.start)?.name));
  for (const name of ['main', 'c_write', 'c_getpid', 'c_mmap', 'c_munmap', 'c_sigprocmask_query', 'c_prctl_get_name', 'fx_write', 'fx_getppid', 'fx_uname', '_start']) {
    assert.ok(covered.has(name), `${name} found through .eh_frame`);
  }
  // Sorted, non-overlapping.
  for (let i = 1; i < fromFdes.length; i++) assert.ok(fromFdes[i - 1]!.end <= fromFdes[i]!.start);
});

// `00000018 0000000000000014 0000001c FDE cie=00000000 pc=0000000000001020..0000000000001040`
async function readelfFdes(path: string): Promise<string[]> {
  const text = await tool('readelf', ['-W', '--debug-dump=frames,no-follow-links', path]);
  const out: string[] = [];
  for (const m of text.matchAll(/^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)$/gm)) {
    out.push(`${BigInt(`0x${m[2]}`).toString(16)}-${BigInt(`0x${m[3]}`).toString(16)}`);
  }
  return out;
}

for (const path of ['/bin/ls', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']) {
  test(`every .eh_frame FDE of ${path} matches readelf --debug-dump=frames`, async () => {
    const elf = readElf(readFileSync(path));
    const s = elf.section('.eh_frame')!;
    const mine = readEhFrame(new Cursor(elf.bytes), s.offset, s.size, s.va).map((r) => `${r.start.toString(16)}-${r.end.toString(16)}`);
    const ref = await readelfFdes(path);
    assert.ok(ref.length > 100, `${path}: readelf lists ${ref.length} FDEs`);
    assert.equal(mine, ref);
  });
}

test('stripped libc: functions from FDEs carry .dynsym names where they start together', () => {
  const elf = readElf(readFileSync('/lib/x86_64-linux-gnu/libc.so.6'));
  assert.is(elf.symbols.length, 0);
  const fns = elf.functions();
  const getpid = elf.dynamicSymbols.find((s) => s.name === 'getpid')!;
  const f = fns.find((x) => x.start === getpid.value);
  assert.ok(f !== undefined && f.source === 'eh_frame');
  assert.ok(['getpid', '__getpid'].includes(f!.name ?? ''), `named ${f!.name}`);
  for (let i = 1; i < fns.length; i++) assert.ok(fns[i - 1]!.start < fns[i]!.start, 'sorted, one per start');
});

test('functions from symbols: node has tens of thousands, sorted and named', () => {
  const elf = readElf(readFileSync(process.execPath));
  const fns = elf.functions();
  assert.ok(fns.length > 10000, `${fns.length} functions`);
  assert.ok(fns.every((x) => x.source === 'symbol'));
  assert.ok(fns.some((x) => x.name === 'main'));
  for (let i = 1; i < fns.length; i++) assert.ok(fns[i - 1]!.start < fns[i]!.start);
});

test('.o: ranges are per section, so functions at offset 0 of different sections stay apart', async () => {
  const f = await buildFixtures();
  const elf = readElf(readFileSync(f.object));
  const fns = elf.functions();
  const funcs = elf.symbols.filter((s) => s.type === 2 && s.section !== 0);
  assert.is(fns.length, new Set(funcs.map((s) => `${s.section}:${s.value}`)).size);
  for (const s of funcs) {
    const r = fns.find((x) => x.section === s.section && x.start === s.value);
    assert.ok(r !== undefined, `${s.name} has its range`);
    assert.is(r!.end, s.value + BigInt(s.size), s.name);
  }
  const main = fns.find((x) => x.name === 'main')!;
  assert.is(elf.sections[main.section!]!.name, '.text.startup');
  assert.ok(fns.some((x) => x.start === 0n && x.section !== main.section), 'another function starts at offset 0 of .text');
});

/** One range per start, the widest end, a global name first: from the symbol objects, the slow plain way. */
function naiveFunctions(elf: ElfFile): string[] {
  const naive = new Map<bigint, { end: bigint; name: string; global: boolean }>();
  for (const s of [...elf.symbols, ...elf.dynamicSymbols]) {
    if ((s.type !== 2 && s.type !== 10) || s.section === 0 || s.section >= 0xff00) continue;
    const end = BigInt.asUintN(64, s.value + BigInt(s.size));
    const global = s.bind !== 0;
    const prev = naive.get(s.value);
    if (prev === undefined) naive.set(s.value, { end, name: s.name, global });
    else {
      if (end > prev.end) prev.end = end;
      if (s.name !== '' && (prev.name === '' || (global && !prev.global))) Object.assign(prev, { name: s.name, global });
    }
  }
  return [...naive.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([start, v]) => `${start}-${v.end}-${v.name}`);
}

const rangesText = (elf: ElfFile): string[] => elf.functions().map((x) => `${x.start}-${x.end}-${x.name ?? ''}`);

test('functions from symbols equal a naive merge (one range per start, widest end, a global name first) on node and the fixtures', async () => {
  const f = await buildFixtures();
  for (const path of [process.execPath, f.static, f.pie, f.shared]) {
    const elf = readElf(readFileSync(path));
    assert.equal(rangesText(elf), naiveFunctions(elf), path);
  }
});

test('a function at 2^60 takes the bigint path, and the ranges still equal the naive merge', async () => {
  const bytes = new Uint8Array(readFileSync((await buildFixtures()).static));
  const base = readElf(bytes);
  const symtab = base.sections.find((x) => x.type === 2)!;
  const victim = base.symbols.find((x) => x.type === 2 && x.section !== 0 && x.name === 'main')!;
  // st_value of main: 2^60 (a value no program has; past 2^53, where the doubles stop being exact).
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(symtab.offset + victim.index * 24 + 8, 1n << 60n, true);
  const elf = readElf(bytes);
  const ranges = rangesText(elf);
  assert.ok(ranges.includes(`${1n << 60n}-${(1n << 60n) + BigInt(victim.size)}-main`), 'main moved to 2^60');
  assert.equal(ranges, naiveFunctions(elf));
});

test('names that are not ASCII: UTF-8 symbol names read the same from symbols and from functions()', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'libos-utf8-'));
  const src = join(dir, 'u.c');
  writeFileSync(src, 'int caf\u00e9(int x) { return x + 1; }\nint na\u00efve(int x) { return x * 3; }\nint main(int c, char **v) { (void)v; return caf\u00e9(c) + na\u00efve(c) - 5; }\n');
  await tool('gcc', ['-O1', '-fno-inline', src, '-o', join(dir, 'u')]);
  const elf = readElf(readFileSync(join(dir, 'u')));
  for (const name of ['café', 'naïve']) {
    assert.ok(elf.symbols.some((x) => x.name === name), `.symtab has ${name}`);
    assert.ok(elf.functions().some((x) => x.name === name), `functions() has ${name}`);
  }
  assert.equal(rangesText(elf), naiveFunctions(elf));
  rmSync(dir, { recursive: true, force: true });
});

test('memory: every table of node read stays well under the file size in heap', () => {
  const bytes = readFileSync(process.execPath);
  const before = process.memoryUsage().heapUsed;
  const elf = readElf(bytes);
  const n = elf.symbols.length + elf.dynamicSymbols.length + elf.relocations.length + elf.notes.length + elf.functions().length;
  const grown = process.memoryUsage().heapUsed - before;
  // Measured about 0.5x the file (49 MB for 99 MB); garbage not yet collected counts too, so the
  // bound is loose, but per-byte allocation or copies of the file would break it.
  assert.ok(n > 100000);
  assert.ok(grown < 2 * bytes.length, `heap grew ${(grown / 1e6).toFixed(0)} MB for a ${(bytes.length / 1e6).toFixed(0)} MB file`);
});

test.run();
