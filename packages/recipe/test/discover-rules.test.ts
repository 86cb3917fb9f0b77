import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FunctionAnalysis, MatchRule, Site } from '@libos/recipe';
import { findSites } from '@libos/recipe';
import { assemble, fn } from './discover-asm.js';

const SEED = (len = 10) =>
  `551: syscall\n .fill ${len},1,0x90\n552:\n .pushsection .libos.instructions.syscall,"a"\n .balign 8\n .quad 551b\n .byte 12\n .popsection`;

const prog = assemble([
  fn('sc_plain', 'mov $39,%eax\n syscall\n ret'),
  fn('sc_padded', 'mov $1,%eax\n syscall\n .fill 10,1,0x90\n ret'),
  // 4-byte and 6-byte NOPs (nopl 0(%rax); nopw 0(%rax,%rax,1)): room counts decoded NOP instructions, not 0x90 bytes.
  fn('sc_padded_multi', 'mov $2,%eax\n syscall\n .byte 0x0f,0x1f,0x40,0x00\n .byte 0x66,0x0f,0x1f,0x44,0x00,0x00\n ret'),
  // The third NOP is a loop head: room stops before it.
  fn('sc_pad_target', 'mov $3,%eax\n syscall\n nop\n nop\n1: nop\n nop\n dec %ecx\n jnz 1b\n ret'),
  // gVisor #10849: the 5 bytes before the syscall read `b8 10 00 00 00` (mov $16,%eax = ioctl) to a
  // byte guess, but they are the tail of a movabs into rcx.
  fn('sc_gvisor', 'movabs $0x10b8000000,%rcx\n syscall\n ret'),
  fn('sc_mov_before', 'mov $16,%eax\n syscall\n ret'),
  fn('sc_mov_not_adjacent', 'mov $16,%eax\n mov %rdi,%rsi\n syscall\n ret'),
  fn('sc_unknown', 'mov %rdi,%rax\n syscall\n ret'),
  // `0f 05` inside an immediate: a candidate, never a site.
  fn('sc_data', 'mov $0x050f,%eax\n ret'),
  fn('sc_bad', '.byte 0x06\n syscall\n ret'),
  fn('sc_int80', 'mov $20,%eax\n int $0x80\n ret'),
  fn('sc_sysenter', 'sysenter\n ret'),
  fn('sc_other', 'mov $39,%eax\n syscall\n ret', '.altcode'),
  fn('sc_annotated', `mov $39,%eax\n ${SEED()}\n ret`),
  fn('sc_annotated_short', `mov $39,%eax\n ${SEED(5)}\n ret`),
  // A bad table entry: points at a ret.
  fn('sc_not_syscall', '1: ret\n .pushsection .libos.instructions.syscall,"a"\n .balign 8\n .quad 1b\n .byte 12\n .popsection'),
  // Bytes in an executable section that no function covers.
  '.section .altdata,"ax",@progbits\n .fill 200,1,0xff\n .byte 0x0f,0x05\n .fill 200,1,0xff',
].join('\n'));

const INSTRUCTION: MatchRule = { instruction: 'syscall' };

function siteIn(sites: Site[], name: string): Site | undefined {
  return sites.find((s) => s.symbol === name);
}
function names(sites: Site[]): string[] {
  return sites.map((s) => s.symbol ?? '?').sort();
}

test('instruction rule: every decoded syscall, sorted by va, labelled, with number and room', () => {
  const r = findSites(prog.elf, [INSTRUCTION]);
  assert.equal(names(r.sites), [
    'sc_annotated', 'sc_annotated_short', 'sc_gvisor', 'sc_mov_before', 'sc_mov_not_adjacent', 'sc_other', 'sc_pad_target',
    'sc_padded', 'sc_padded_multi', 'sc_plain', 'sc_unknown',
  ]);
  for (let i = 1; i < r.sites.length; i++) assert.ok((r.sites[i - 1] as Site).va < (r.sites[i] as Site).va, 'sorted by va');
  const plain = siteIn(r.sites, 'sc_plain');
  assert.ok(plain);
  assert.is(plain.rule, 'match[0]: instruction syscall');
  assert.is(plain.ruleIndex, 0);
  assert.is(plain.va, prog.sym('sc_plain') + 5n);
  assert.is(plain.offset, prog.elf.vaToOffset(plain.va));
  assert.is(plain.syscallNr, 39);
  assert.is(plain.room, 2);
  assert.is(plain.section, '.text');
  assert.is(plain.functionStart, prog.sym('sc_plain'));
  assert.is(plain.movVa, undefined, 'movVa only under precededBy');
  assert.is(siteIn(r.sites, 'sc_padded')?.room, 12);
  assert.is(siteIn(r.sites, 'sc_padded_multi')?.room, 12);
  assert.is(siteIn(r.sites, 'sc_pad_target')?.room, 4);
  assert.is(siteIn(r.sites, 'sc_unknown')?.syscallNr, undefined);
  assert.is(siteIn(r.sites, 'sc_gvisor')?.syscallNr, undefined);
  assert.is(siteIn(r.sites, 'sc_other')?.section, '.altcode');
});

test('instruction rule: data is not code; undecodable functions and bytes outside functions are diagnostics', () => {
  const r = findSites(prog.elf, [INSTRUCTION]);
  const dataVa = prog.sym('sc_data') + 1n;
  assert.ok(prog.elf.readVa(dataVa, 2).every((b, i) => b === [0x0f, 0x05][i]), 'the fixture holds the pair');
  assert.not.ok(r.sites.some((s) => s.va === dataVa));
  assert.not.ok(siteIn(r.sites, 'sc_bad'));
  const undecodable = r.diagnostics.find((d) => d.code === 'DISCOVER_UNDECODABLE');
  assert.is(undecodable?.va, prog.sym('sc_bad'));
  const outside = r.diagnostics.find((d) => d.code === 'DISCOVER_OUTSIDE_FUNCTION');
  assert.ok(outside);
  assert.match(outside.message, /^1 candidate/);
  assert.is(r.stats.outsideFunctions, 1);
  // 11 syscalls + int80 + sysenter confirmed; the data pair, sc_bad's syscall and the .altdata pair are not.
  assert.is(r.stats.confirmed, 13);
  assert.ok(r.stats.candidates >= 16, `candidates ${r.stats.candidates}`);
  assert.ok(r.stats.functionsDecoded >= 14);
});

test('int $0x80 and sysenter are reported, never sites', () => {
  const r = findSites(prog.elf, [INSTRUCTION]);
  assert.equal(r.reported.map((s) => [s.symbol, s.instruction]), [['sc_int80', 'int80'], ['sc_sysenter', 'sysenter']]);
  assert.ok(r.reported.every((s) => s.rule === 'match[0]: instruction syscall' && s.syscallNr === undefined));
  assert.not.ok(r.sites.some((s) => s.instruction !== 'syscall'));
  // Out of a rule's symbol scope: not reported either.
  assert.is(findSites(prog.elf, [{ instruction: 'syscall', symbols: { include: ['sc_plain'] } }]).reported.length, 0);
});

test('padding: at least N bytes of decoded NOPs after the syscall', () => {
  assert.equal(names(findSites(prog.elf, [{ instruction: 'syscall', padding: 10 }]).sites), ['sc_annotated', 'sc_padded', 'sc_padded_multi']);
  assert.equal(names(findSites(prog.elf, [{ instruction: 'syscall', padding: 2 }]).sites), [
    'sc_annotated', 'sc_annotated_short', 'sc_pad_target', 'sc_padded', 'sc_padded_multi',
  ]);
});

test('precededBy mov-eax-imm: confirmed by decoding, not fooled by b8 bytes in a longer instruction', () => {
  const gvisor = prog.sym('sc_gvisor') + 10n;
  const off = prog.elf.vaToOffset(gvisor) as number;
  // What a byte guess sees: b8 10 00 00 00 0f 05 = mov $16 (ioctl),%eax; syscall.
  assert.equal([...prog.elf.bytes.subarray(off - 5, off + 2)], [0xb8, 0x10, 0, 0, 0, 0x0f, 0x05]);
  const r = findSites(prog.elf, [{ instruction: 'syscall', precededBy: 'mov-eax-imm' }]);
  assert.not.ok(r.sites.some((s) => s.va === gvisor), 'the movabs tail is not a mov');
  assert.not.ok(siteIn(r.sites, 'sc_mov_not_adjacent'));
  assert.not.ok(siteIn(r.sites, 'sc_unknown'));
  const mov = siteIn(r.sites, 'sc_mov_before');
  assert.ok(mov);
  assert.is(mov.syscallNr, 16);
  assert.is(mov.movVa, mov.va - 5n);
  assert.equal(names(r.sites), [
    'sc_annotated', 'sc_annotated_short', 'sc_mov_before', 'sc_other', 'sc_pad_target', 'sc_padded', 'sc_padded_multi', 'sc_plain',
  ]);
});

test('section and symbol globs, include and exclude', () => {
  assert.equal(names(findSites(prog.elf, [{ instruction: 'syscall', sections: { include: ['.alt*'] } }]).sites), ['sc_other']);
  assert.not.ok(siteIn(findSites(prog.elf, [{ instruction: 'syscall', sections: { exclude: ['.altcode'] } }]).sites, 'sc_other'));
  assert.equal(names(findSites(prog.elf, [{ instruction: 'syscall', symbols: { include: ['sc_pad?ed*'] } }]).sites), ['sc_padded', 'sc_padded_multi']);
  assert.equal(names(findSites(prog.elf, [{ instruction: 'syscall', symbols: { include: ['sc_[mu]*'], exclude: ['*adjacent'] } }]).sites), ['sc_mov_before', 'sc_unknown']);
});

test('syscall filter: names and numbers; unknown numbers fail includes and pass excludes', () => {
  assert.equal(names(findSites(prog.elf, [{ instruction: 'syscall', syscalls: { include: ['ioctl'] } }]).sites), ['sc_mov_before', 'sc_mov_not_adjacent']);
  assert.equal(names(findSites(prog.elf, [{ instruction: 'syscall', syscalls: { include: [1, 2] } }]).sites), ['sc_padded', 'sc_padded_multi']);
  const excluded = names(findSites(prog.elf, [{ instruction: 'syscall', syscalls: { exclude: ['getpid', 16] } }]).sites);
  assert.equal(excluded, ['sc_gvisor', 'sc_pad_target', 'sc_padded', 'sc_padded_multi', 'sc_unknown']);
  const bad = findSites(prog.elf, [{ instruction: 'syscall', syscalls: { include: ['no_such_call'] } }]);
  assert.is(bad.diagnostics.find((d) => d.code === 'DISCOVER_UNKNOWN_SYSCALL')?.message, "match[0]: no x86-64 system call is named 'no_such_call'");
  assert.is(bad.sites.length, 0);
});

test('rules combine as a union; each site once, with the first rule that found it', () => {
  const r = findSites(prog.elf, [
    { annotation: '.libos.instructions.syscall' },
    { instruction: 'syscall', symbols: { include: ['sc_padded*'] } },
    { instruction: 'syscall' },
  ]);
  assert.is(new Set(r.sites.map((s) => s.va)).size, r.sites.length);
  assert.is(siteIn(r.sites, 'sc_annotated')?.rule, 'match[0]: annotation .libos.instructions.syscall');
  assert.is(siteIn(r.sites, 'sc_padded')?.rule, 'match[1]: instruction syscall');
  assert.is(siteIn(r.sites, 'sc_padded_multi')?.ruleIndex, 1);
  assert.is(siteIn(r.sites, 'sc_plain')?.rule, 'match[2]: instruction syscall');
  assert.is(r.sites.length, 11);
  // A rule whose conditions reject a site leaves it to a later rule.
  const later = findSites(prog.elf, [{ instruction: 'syscall', padding: 10 }, { instruction: 'syscall', symbols: { include: ['sc_plain'] } }]);
  assert.equal(names(later.sites), ['sc_annotated', 'sc_padded', 'sc_padded_multi', 'sc_plain']);
  assert.is(siteIn(later.sites, 'sc_plain')?.ruleIndex, 1);
});

test('annotation rule: verified bytes, real room, diagnostics for entries that are not syscalls', () => {
  const r = findSites(prog.elf, [{ annotation: '.libos.instructions.syscall' }]);
  assert.equal(names(r.sites), ['sc_annotated', 'sc_annotated_short']);
  const full = siteIn(r.sites, 'sc_annotated');
  assert.is(full?.room, 12);
  assert.is(full?.syscallNr, 39);
  assert.is(full?.rule, 'match[0]: annotation .libos.instructions.syscall');
  assert.is(siteIn(r.sites, 'sc_annotated_short')?.room, 7);
  const codes = r.diagnostics.map((d) => d.code).sort();
  assert.equal(codes, ['DISCOVER_ANNOTATION_NOT_SYSCALL', 'DISCOVER_ANNOTATION_SHORT']);
  assert.is(r.diagnostics.find((d) => d.code === 'DISCOVER_ANNOTATION_NOT_SYSCALL')?.va, prog.sym('sc_not_syscall'));
  assert.is(r.stats.candidates, 0, 'annotation rules do not scan');
  const pcrel = findSites(prog.elf, [{ annotation: '.libos.instructions.syscall.pcrel' }]);
  assert.is(pcrel.sites.length, 0);
  assert.is(pcrel.diagnostics[0]?.code, 'DISCOVER_ANNOTATION_TABLE');
});

test('two rules on one table: its diagnostics once', () => {
  const r = findSites(prog.elf, [{ annotation: '.libos.instructions.syscall', padding: 10 }, { annotation: '.libos.instructions.syscall' }]);
  assert.is(r.diagnostics.length, 2);
  assert.is(siteIn(r.sites, 'sc_annotated')?.ruleIndex, 0);
  assert.is(siteIn(r.sites, 'sc_annotated_short')?.ruleIndex, 1);
});

test('a file without function ranges: every candidate is outside, and the message says why', () => {
  const bare = { ...prog.elf, functions: () => [], section: prog.elf.section.bind(prog.elf), vaToOffset: prog.elf.vaToOffset.bind(prog.elf) };
  const r = findSites(bare as typeof prog.elf, [INSTRUCTION]);
  assert.is(r.sites.length, 0);
  assert.is(r.stats.outsideFunctions, r.stats.candidates);
  assert.match(r.diagnostics.find((d) => d.code === 'DISCOVER_OUTSIDE_FUNCTION')?.message ?? '', /no function symbols and no \.eh_frame/);
});

test('function ranges that cannot be read are a diagnostic, not an exception', () => {
  const broken = { ...prog.elf, functions: () => { throw new Error('bad .eh_frame'); }, section: prog.elf.section.bind(prog.elf), vaToOffset: prog.elf.vaToOffset.bind(prog.elf) };
  const r = findSites(broken as typeof prog.elf, [INSTRUCTION]);
  assert.is(r.sites.length, 0);
  assert.is(r.diagnostics[0]?.code, 'DISCOVER_FUNCTIONS_UNREADABLE');
  assert.match(r.diagnostics[0]?.message ?? '', /bad \.eh_frame/);
});

test('invalid rules are diagnostics', () => {
  const r = findSites(prog.elf, [{}, { annotation: '.libos.instructions.syscall', instruction: 'syscall' }, { annotation: '.nope' }]);
  assert.equal(r.diagnostics.map((d) => d.code), ['DISCOVER_RULE_INVALID', 'DISCOVER_RULE_INVALID', 'DISCOVER_RULE_INVALID']);
  assert.is(r.sites.length, 0);
});

test('a shared analysis cache decodes each function once across calls', () => {
  const analyses = new Map<bigint, FunctionAnalysis>();
  const first = findSites(prog.elf, [INSTRUCTION, { instruction: 'syscall', padding: 10 }], { analyses });
  assert.ok(first.stats.functionsDecoded > 0);
  assert.is(analyses.size, first.stats.functionsDecoded);
  assert.is(findSites(prog.elf, [INSTRUCTION]).stats.functionsDecoded, first.stats.functionsDecoded, 'a second rule decodes nothing more');
  const again = findSites(prog.elf, [INSTRUCTION], { analyses });
  assert.is(again.stats.functionsDecoded, 0);
  assert.equal(again.sites, first.sites);
});

test.run();
