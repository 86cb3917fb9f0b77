// The reader's tables against `readelf -W`, field by field, for system binaries and every fixture.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as elfkit from '../src/index.js';
import { readElf, SHT_SYMTAB, STT_SECTION, type ElfFile, type ElfSymbol } from '../src/index.js';
import { buildFixtures } from '../../../fixtures/build.js';
import {
  flagLetters, parseRelocations, parseSections, parseSegments, parseSymbolLine, SECTION_TYPES, SEGMENT_TYPES,
  splitSymbolTables, SYMBOL_BINDS, SYMBOL_TYPES, SYMBOL_VIS, symbolNdx, tool,
} from './helpers/tools.js';

const SYSTEM = ['/bin/ls', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'];
const RELOC_NAMES = new Map<number, string>(
  Object.entries(elfkit).filter(([k, v]) => k.startsWith('R_X86_64_') && typeof v === 'number').map(([k, v]) => [v as number, k]),
);

const test = suite('readelf comparison');

function compareSections(elf: ElfFile, text: string, file: string): void {
  const ref = parseSections(text);
  assert.is(elf.sections.length, ref.length, `${file}: section count`);
  for (const r of ref) {
    const s = elf.sections[r.index]!;
    const where = `${file} section [${r.index}] ${r.name}`;
    assert.is(s.name, r.name, where);
    const type = SECTION_TYPES[r.type];
    assert.ok(type !== undefined, `${where}: readelf type ${r.type} not in the table`);
    assert.is(s.type, type, `${where} type`);
    assert.is(s.va, r.va, `${where} va`);
    assert.is(s.offset, r.offset, `${where} offset`);
    assert.is(s.size, r.size, `${where} size`);
    assert.is(s.entsize, r.entsize, `${where} entsize`);
    assert.is(s.flags, flagLetters(r.flags), `${where} flags ${r.flags}`);
    assert.is(s.link, r.link, `${where} link`);
    assert.is(s.info, r.info, `${where} info`);
    assert.is(s.align, r.align, `${where} align`);
    assert.is(elf.section(r.name)?.name, r.name, `${where}: section(name) finds it`);
  }
}

function compareSegments(elf: ElfFile, text: string, file: string): void {
  const ref = parseSegments(text);
  assert.is(elf.segments.length, ref.length, `${file}: segment count`);
  ref.forEach((r, i) => {
    const p = elf.segments[i]!;
    const where = `${file} segment ${i} ${r.type}`;
    assert.is(p.type, SEGMENT_TYPES[r.type], where);
    assert.is(p.offset, r.offset, `${where} offset`);
    assert.is(p.va, r.va, `${where} va`);
    assert.is(p.pa, r.pa, `${where} pa`);
    assert.is(p.filesz, r.filesz, `${where} filesz`);
    assert.is(p.memsz, r.memsz, `${where} memsz`);
    assert.is(p.flags, r.flags, `${where} flags`);
    assert.is(p.align, r.align, `${where} align`);
  });
}

function sameName(mine: string, ref: string): boolean {
  // readelf appends version information (`@GLIBC_2.2.5 (2)`) to dynamic symbol names.
  return mine === ref || ref.startsWith(`${mine}@`);
}

function compareSymbol(elf: ElfFile, s: ElfSymbol | undefined, line: string, where: string): void {
  const r = parseSymbolLine(line);
  assert.ok(s !== undefined, `${where}: symbol ${r.index} missing`);
  assert.is(s!.index, r.index, where);
  assert.is(s!.value, r.value, `${where} #${r.index} value`);
  assert.is(s!.size, r.size, `${where} #${r.index} size`);
  assert.is(s!.type, SYMBOL_TYPES[r.type], `${where} #${r.index} type ${r.type}`);
  assert.is(s!.bind, SYMBOL_BINDS[r.bind], `${where} #${r.index} bind ${r.bind}`);
  assert.is(s!.visibility, SYMBOL_VIS[r.vis], `${where} #${r.index} vis ${r.vis}`);
  assert.is(s!.section, symbolNdx(r.ndx), `${where} #${r.index} ndx ${r.ndx}`);
  // readelf names an unnamed section symbol after its section.
  const name = s!.type === STT_SECTION && s!.name === '' ? elf.sections[s!.section]?.name ?? '' : s!.name;
  assert.ok(sameName(name, r.name), `${where} #${r.index} name ${JSON.stringify(s!.name)} vs ${JSON.stringify(r.name)}`);
}

/** Compares every symbol, or `sample` evenly spread ones (plus the first and last) when given. */
function compareSymbols(elf: ElfFile, text: string, file: string, sample?: number): number {
  let compared = 0;
  const tables = splitSymbolTables(text);
  const mine = new Map<string, ElfSymbol[]>([['.dynsym', elf.dynamicSymbols], ['.symtab', elf.symbols]]);
  assert.is(tables.length, [...mine.values()].filter((t) => t.length > 0).length, `${file}: symbol table count`);
  for (const t of tables) {
    const syms = mine.get(t.name);
    assert.ok(syms !== undefined, `${file}: unexpected table ${t.name}`);
    assert.is(syms!.length, t.count, `${file} ${t.name} count`);
    assert.is(t.lines.length, t.count, `${file} ${t.name}: readelf listed every entry`);
    const step = sample === undefined ? 1 : Math.max(1, Math.floor(t.count / sample));
    for (let i = 0; i < t.count; i += step) {
      compareSymbol(elf, syms![i], t.lines[i]!, `${file} ${t.name}`);
      compared++;
    }
    compareSymbol(elf, syms![t.count - 1], t.lines[t.count - 1]!, `${file} ${t.name}`);
  }
  return compared;
}

function symbolName(elf: ElfFile, relocSection: string, index: number): string {
  const rs = elf.section(relocSection)!;
  const table = elf.sections[rs.link]!;
  const syms = table.type === SHT_SYMTAB ? elf.symbols : elf.dynamicSymbols;
  const s = syms[index];
  if (s === undefined) return `<bad ${index}>`;
  // readelf names a section symbol after its section.
  if (s.type === STT_SECTION && s.name === '') return elf.sections[s.section]?.name ?? '';
  return s.name;
}

function compareRelocations(elf: ElfFile, text: string, file: string): number {
  const ref = parseRelocations(text);
  let compared = 0;
  const bySection = new Map<string, elfkit.Relocation[]>();
  for (const r of elf.relocations) {
    const list = bySection.get(r.section) ?? [];
    list.push(r);
    bySection.set(r.section, list);
  }
  assert.equal([...bySection.keys()].sort(), ref.map((r) => r.name).sort(), `${file}: relocation sections`);
  for (const sec of ref) {
    const mine = bySection.get(sec.name)!;
    const s = elf.section(sec.name)!;
    assert.is(s.offset, sec.offset, `${file} ${sec.name} offset`);
    if (sec.relr.length > 0 || mine[0]?.kind === 'relr') {
      assert.is(s.size / 8, sec.entries, `${file} ${sec.name} words`);
      assert.equal(mine.map((r) => r.offset), sec.relr, `${file} ${sec.name} RELR offsets`);
      for (const r of mine) {
        // RELR's addend is the word in place.
        const inPlace = Buffer.from(elf.readVa(r.offset, 8)).readBigInt64LE(0);
        assert.is(r.addend, inPlace, `${file} ${sec.name} 0x${r.offset.toString(16)} addend`);
        compared++;
      }
      continue;
    }
    assert.is(mine.length, sec.entries, `${file} ${sec.name} count`);
    assert.is(sec.rela.length, sec.entries, `${file} ${sec.name}: readelf listed every entry`);
    sec.rela.forEach((ref1, i) => {
      const r = mine[i]!;
      const where = `${file} ${sec.name}[${i}]`;
      assert.is(r.kind, 'rela', where);
      assert.is(r.offset, ref1.offset, `${where} offset`);
      assert.is((BigInt(r.symbol) << 32n) | BigInt(r.type), ref1.info, `${where} info`);
      assert.is(RELOC_NAMES.get(r.type), ref1.type, `${where} type`);
      assert.is(r.addend, ref1.addend, `${where} addend`);
      if (r.symbol !== 0) {
        const name = symbolName(elf, sec.name, r.symbol);
        assert.ok(sameName(name, ref1.symbolName), `${where} symbol ${name} vs ${ref1.symbolName}`);
      }
      assert.is(r.target, s.info !== 0 ? s.info : undefined, `${where} target`);
      compared++;
    });
  }
  return compared;
}

async function compareFile(path: string): Promise<void> {
  const elf = readElf(readFileSync(path));
  const [s, l, sy, r] = await Promise.all([
    tool('readelf', ['-W', '-S', path]), tool('readelf', ['-W', '-l', path]), tool('readelf', ['-W', '-s', path]),
    tool('readelf', ['-W', '-r', path]),
  ]);
  compareSections(elf, s, path);
  compareSegments(elf, l, path);
  const syms = compareSymbols(elf, sy, path);
  const rels = compareRelocations(elf, r, path);
  assert.ok(elf.sections.length > 5, `${path}: sections compared`);
  if (!path.endsWith('.o')) assert.ok(elf.segments.length > 3, `${path}: segments compared`);
  assert.ok(syms > 0 && rels > 0, `${path}: compared ${syms} symbols and ${rels} relocations`);
}

for (const path of SYSTEM) test(`matches readelf: ${path}`, () => compareFile(path));

test('matches readelf: every fixture', async () => {
  const f = await buildFixtures();
  for (const fx of f.list) await compareFile(fx.path);
});

test('matches readelf: node executable (sections, segments in full; symbols by count and samples)', async () => {
  const path = process.execPath;
  const elf = readElf(readFileSync(path));
  const [s, l, r] = await Promise.all([
    tool('readelf', ['-W', '-S', path]), tool('readelf', ['-W', '-l', path]), tool('readelf', ['-W', '-r', path]),
  ]);
  compareSections(elf, s, path);
  compareSegments(elf, l, path);
  compareRelocations(elf, r, path);
  // The full symbol listing is ~185k lines; compare every table's count and ~500 entries each.
  const sy = await tool('readelf', ['-W', '-s', path]);
  const compared = compareSymbols(elf, sy, path, 500);
  assert.ok(compared >= 500, `compared ${compared} node symbols`);
});

test('kind of each system binary', () => {
  assert.is(readElf(readFileSync('/bin/ls')).kind, 'pie');
  assert.is(readElf(readFileSync('/lib/x86_64-linux-gnu/libc.so.6')).kind, 'shared');
  assert.is(readElf(readFileSync('/lib64/ld-linux-x86-64.so.2')).kind, 'shared');
});

test.run();
