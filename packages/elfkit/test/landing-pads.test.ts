// landingPads: the pads of a file's exception tables (LSDAs in .gcc_except_table, named by the
// FDEs of CIEs with the 'L' augmentation). Checked on a program whose tables are written by hand
// (default and explicit LPStart, a zero LSDA pointer, a pointer out of the file) and on the
// system's C++ (gdb) and C (libc, built with -fexceptions for cancellation) binaries.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { missingFile, testNeeding } from '../../../fixtures/prerequisites.js';
import { landingPads, readElf } from '../src/index.js';
import { readLandingPads } from '../src/read/read-lsda.js';

const dir = mkdtempSync(join(tmpdir(), 'libos-lsda-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** A function whose FDE points at `lsda` (an expression), with labels a and b inside it. */
function fn(name: string, lsda: string): string {
  return [
    `.text\n.globl ${name}\n.type ${name},@function\n${name}:`,
    '  .cfi_startproc',
    '  .cfi_personality 0x3, personality',
    `  .cfi_lsda 0x3, ${lsda}`,
    '  nop',
    `${name}_a: nop`,
    `${name}_b: ret`,
    '  .cfi_endproc',
    `.size ${name},.-${name}`,
  ].join('\n');
}

test('landing pads from hand-written tables: default LPStart, explicit LPStart, no pad, none, unreadable', () => {
  const source = [
    '.text\n.globl _start\n_start: hlt\npersonality: ret',
    fn('one', '.Lone'),
    fn('explicit', '.Lexplicit'),
    fn('zero', '0'),
    fn('lost', '0x7fff0000'),
    fn('cut', '.Lcut'),
    '.section .gcc_except_table,"a",@progbits',
    // A call-site entry cut by the end of its table (length 2, an entry of 4): unreadable.
    '.Lcut: .byte 0xff, 0xff, 0x1, 2, 0, 1, 1, 0',
    // LPStart omitted (the function's start), TType omitted, uleb128 call sites: pads at +1 and +2, one entry with no pad.
    '.Lone: .byte 0xff, 0xff, 0x1\n  .uleb128 .Lone_end-.Lone_cs\n.Lone_cs:\n  .uleb128 0, 1, one_a-one, 0\n  .uleb128 1, 1, 0, 0\n  .uleb128 2, 1, one_b-one, 0\n.Lone_end:',
    // LPStart given (udata4, absolute): pads count from it.
    '.Lexplicit: .byte 0x3\n  .long explicit_a\n  .byte 0xff, 0x3\n  .uleb128 .Lexplicit_end-.Lexplicit_cs\n.Lexplicit_cs:\n  .long 0, 1, 1\n  .uleb128 0\n.Lexplicit_end:',
  ].join('\n');
  writeFileSync(join(dir, 'p.S'), source);
  execFileSync('gcc', ['-nostdlib', '-static', '-no-pie', '-o', join(dir, 'p'), join(dir, 'p.S')]);
  const elf = readElf(readFileSync(join(dir, 'p')));
  const sym = (name: string) => elf.symbols.find((s) => s.name === name)!.value;
  const found = landingPads(elf);
  assert.equal(found.pads, [sym('one_a'), sym('one_b'), sym('explicit_b')].sort((a, b) => (a < b ? -1 : 1)));
  assert.equal(found.unknown, [{ start: sym('lost'), end: sym('lost') + 3n }, { start: sym('cut'), end: sym('cut') + 3n }]);
});

test('an .eh_frame that cannot be read: no pad is known anywhere, so every address is unknown', () => {
  const elf = readElf(readFileSync('/lib/x86_64-linux-gnu/libc.so.6'));
  const s = elf.section('.eh_frame')!;
  const bytes = Uint8Array.from(elf.bytes);
  // The first entry's length runs past the section.
  new DataView(bytes.buffer).setUint32(s.offset, s.size + 100, true);
  const found = landingPads(readElf(bytes));
  assert.equal(found.pads, []);
  assert.equal(found.unknown, [{ start: 0n, end: 2n ** 64n - 1n }]);
});

test('FDEs that all name one long table with a bad last entry: the entries read stay within the budget', () => {
  // 300 functions, one table of 3,000 entries (12 KB) whose last entry is cut: read once per
  // FDE that is 900,000 entries; the budget is 4 x 12 KB + 65,536.
  const entries = 3000;
  const source = [
    '.text\n.globl _start\n_start: hlt\npersonality: ret',
    ...Array.from({ length: 300 }, (_, i) => fn(`f${i}`, '.Lbig')),
    '.section .gcc_except_table,"a",@progbits',
    `.Lbig: .byte 0xff, 0xff, 0x1\n  .uleb128 ${entries * 4 - 1}\n  .rept ${entries}\n  .byte 0, 1, 0, 0\n  .endr`,
  ].join('\n');
  writeFileSync(join(dir, 'big.S'), source);
  execFileSync('gcc', ['-nostdlib', '-static', '-no-pie', '-o', join(dir, 'big'), join(dir, 'big.S')]);
  const elf = readElf(readFileSync(join(dir, 'big')));
  const stats = { entriesRead: 0 };
  const found = readLandingPads(elf, stats);
  assert.is(found.unknown.length, 300);
  assert.equal(found.pads, []);
  const table = elf.section('.gcc_except_table')!.size;
  assert.ok(stats.entriesRead <= 4 * table + 65536 + entries, `${stats.entriesRead} entries read`);
});

test('no section headers, an .eh_frame found through PT_GNU_EH_FRAME: every pad is unknown', () => {
  const elf = readElf(readFileSync('/lib/x86_64-linux-gnu/libc.so.6'));
  const bytes = Uint8Array.from(elf.bytes);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0x28, 0n, true); // e_shoff
  view.setUint16(0x3c, 0, true); // e_shnum
  view.setUint16(0x3e, 0, true); // e_shstrndx
  const sectionless = readElf(bytes);
  assert.ok(sectionless.functions().length > 1000, 'functions still come from .eh_frame');
  assert.equal(readLandingPads(sectionless).unknown, [{ start: 0n, end: 2n ** 64n - 1n }]);
});

for (const path of ['/usr/bin/gdb', '/lib/x86_64-linux-gnu/libc.so.6']) {
  testNeeding(test, missingFile(path), `landing pads of ${path}: found, each inside a function`, () => {
    const elf = readElf(readFileSync(path));
    const { pads, unknown } = landingPads(elf);
    assert.ok(pads.length > 20, `${pads.length} pads`);
    assert.equal(unknown, []);
    const fns = elf.functions();
    let lo = 0;
    for (const pad of pads) {
      while (lo < fns.length && fns[lo]!.end <= pad) lo++;
      assert.ok(lo < fns.length && fns[lo]!.start <= pad, `pad 0x${pad.toString(16)} lies in a function`);
    }
  });
}

test.run();
