// Bad edits and impossible layouts give typed ElfErrors with a code and, where there is one, the
// file offset (or the va) of the offending item. planLayout's placement rules, table-driven.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { ElfError, planLayout, PT_LOAD, writeElf, type ElfEdit, type ElfFile } from '../src/index.js';
import { jumpEdit, load } from './write-support.js';

const test = suite('writeElf / planLayout: refusals and placement rules');
let fx: Fixtures;

test.before(async () => {
  fx = await buildFixtures();
});

function fail(f: () => unknown): ElfError {
  try {
    f();
  } catch (e) {
    assert.instance(e, ElfError);
    return e as ElfError;
  }
  throw new Error('expected an ElfError');
}

function base(): { elf: ElfFile; edit: ElfEdit; length: number } {
  const { elf, input } = load(fx.pie);
  return { elf, edit: jumpEdit(elf).edit, length: input.length };
}

test('the unmodified hand-built edit is accepted (the refusals below are about their one change)', () => {
  const { elf, edit } = base();
  assert.ok(writeElf(elf, edit).length > elf.bytes.length);
});

test('a patch past the end of the file: ELF_PATCH_OUT_OF_FILE at its offset', () => {
  const { elf, edit, length } = base();
  const e = fail(() => writeElf(elf, { ...edit, patches: [...edit.patches, { offset: length - 4, bytes: new Uint8Array(8) }] }));
  assert.is(e.code, 'ELF_PATCH_OUT_OF_FILE');
  assert.is(e.offset, length - 4);
  assert.is(fail(() => writeElf(elf, { ...edit, patches: [{ offset: -1, bytes: new Uint8Array(1) }] })).code, 'ELF_PATCH_OUT_OF_FILE');
});

test('overlapping patches: ELF_PATCH_OVERLAP at the later one', () => {
  const { elf, edit } = base();
  const first = edit.patches[0]!;
  const e = fail(() => writeElf(elf, { ...edit, patches: [...edit.patches, { offset: first.offset + 4, bytes: new Uint8Array(2) }] }));
  assert.is(e.code, 'ELF_PATCH_OVERLAP');
  assert.is(e.offset, first.offset + 4);
});

test('a patch over the ELF header: ELF_PATCH_PROTECTED', () => {
  const { elf, edit } = base();
  const e = fail(() => writeElf(elf, { ...edit, patches: [{ offset: 24, bytes: new Uint8Array(8) }] }));
  assert.is(e.code, 'ELF_PATCH_PROTECTED');
  assert.is(e.offset, 24);
});

test('segment vas not from planLayout: misaligned, over an existing PT_LOAD, over each other, out of reach', () => {
  const { elf, edit } = base();
  const text = edit.segments[0]!;
  const withVa = (va: bigint): ElfEdit => ({ ...edit, segments: [{ ...text, va }], symbols: [] });
  assert.is(fail(() => writeElf(elf, withVa(text.va + 16n))).code, 'ELF_SEGMENT_MISALIGNED');
  const load0 = elf.segments.find((s) => s.type === PT_LOAD)!;
  const over = fail(() => writeElf(elf, withVa(load0.va)));
  assert.is(over.code, 'ELF_SEGMENT_OVERLAP');
  assert.is(over.offset, load0.headerOffset, 'the offset names the program header it overlaps');
  // The last PT_LOAD (.data/.bss): a va just past its file bytes but inside its memsz.
  const last = elf.segments.filter((s) => s.type === PT_LOAD).at(-1)!;
  assert.is(fail(() => writeElf(elf, withVa((last.va + BigInt(last.memsz)) & ~0xfffn))).code, 'ELF_SEGMENT_OVERLAP');
  const twice = fail(() => writeElf(elf, { ...edit, symbols: [], segments: [text, { ...text, name: '.libos.other' }] }));
  assert.is(twice.code, 'ELF_SEGMENT_OVERLAP');
  const far = fail(() => writeElf(elf, withVa(text.va + 0x80000000n)));
  assert.is(far.code, 'ELF_SEGMENT_OUT_OF_RANGE');
  assert.is(far.va, text.va + 0x80000000n);
});

test('malformed segments, symbols, entry and names', () => {
  const { elf, edit } = base();
  const text = edit.segments[0]!;
  assert.is(fail(() => writeElf(elf, { ...edit, segments: [{ ...text, memsz: 1 }] })).code, 'ELF_SEGMENT_BAD');
  assert.is(fail(() => writeElf(elf, { ...edit, symbols: [], segments: [{ ...text, name: '.text' }] })).code, 'ELF_SECTION_EXISTS');
  assert.is(fail(() => writeElf(elf, { ...edit, symbols: [], segments: [{ ...text, name: '.libos.plan' }] })).code, 'ELF_SEGMENT_BAD');
  assert.is(fail(() => writeElf(elf, { ...edit, symbols: [{ name: 'x', va: text.va - 0x10n, size: 4, type: 'func' }] })).code, 'ELF_SYMBOL_OUTSIDE');
  assert.is(fail(() => writeElf(elf, { ...edit, symbols: [{ name: 'x', va: text.va + BigInt(text.bytes.length) - 2n, size: 8, type: 'func' }] })).code, 'ELF_SYMBOL_OUTSIDE');
  const entry = fail(() => writeElf(elf, { ...edit, entry: 0x10n }));
  assert.is(entry.code, 'ELF_BAD_ENTRY');
  assert.is(entry.offset, 24, 'e_entry');
});

test('a relocatable object cannot take segments: ELF_WRITE_UNSUPPORTED', () => {
  const { elf } = load(fx.object);
  assert.is(fail(() => planLayout(elf, [{ name: '.libos.text', size: 16, flags: 'rx' }])).code, 'ELF_WRITE_UNSUPPORTED');
  assert.is(fail(() => writeElf(elf, { patches: [], segments: [] })).code, 'ELF_WRITE_UNSUPPORTED');
});

test('planLayout refuses malformed requests and layouts beyond rel32 reach', () => {
  const { elf } = load(fx.static);
  assert.is(fail(() => planLayout(elf, [{ name: '.a', size: 0, flags: 'rx' }])).code, 'ELF_LAYOUT_BAD_REQUEST');
  assert.is(fail(() => planLayout(elf, [{ name: '.a', size: 8, flags: 'rx' }, { name: '.a', size: 8, flags: 'rw' }])).code, 'ELF_LAYOUT_BAD_REQUEST');
  assert.is(fail(() => planLayout(elf, [{ name: '.a', size: 0x7fff0000, flags: 'rx' }])).code, 'ELF_LAYOUT_OUT_OF_RANGE');
  // One byte less than the reach from the lowest code still fits.
  const loads = elf.segments.filter((s) => s.type === PT_LOAD);
  const codeLow = loads.filter((s) => (s.flags & 1) !== 0).map((s) => s.va).reduce((a, b) => (a < b ? a : b));
  const [p] = planLayout(elf, [{ name: '.a', size: 16, flags: 'rx' }]);
  const room = Number(0x7fffffffn - (p!.va - codeLow));
  assert.is(planLayout(elf, [{ name: '.a', size: room, flags: 'rx' }])[0]!.va, p!.va);
  assert.is(fail(() => planLayout(elf, [{ name: '.a', size: room + 1, flags: 'rx' }])).code, 'ELF_LAYOUT_OUT_OF_RANGE');
});

for (const name of ['nonPie', 'pie', 'static', 'staticPie', 'shared'] as const) {
  test(`${name}: planLayout places above every PT_LOAD's va + memsz, page aligned, on separate pages, deterministically`, () => {
    const { elf } = load(fx[name]);
    const requests = [
      { name: '.libos.text', size: 0x1234, flags: 'rx' as const },
      { name: '.libos.data', size: 8, flags: 'rw' as const },
      { name: '.libos.rodata', size: 0x1000, flags: 'r' as const },
    ];
    const placed = planLayout(elf, requests);
    assert.equal(planLayout(elf, requests), placed);
    const top = elf.segments.filter((s) => s.type === PT_LOAD).map((s) => s.va + BigInt(s.memsz)).reduce((a, b) => (a > b ? a : b));
    assert.is(placed[0]!.va, (top + 0xfffn) & ~0xfffn, 'the first free page above .bss (memsz, not filesz)');
    assert.is(placed[1]!.va, placed[0]!.va + 0x2000n);
    assert.is(placed[2]!.va, placed[1]!.va + 0x1000n);
    assert.equal(placed.map((p) => [p.name, p.flags, p.size]), requests.map((r) => [r.name, r.flags, r.size]));
  });
}

test.run();
