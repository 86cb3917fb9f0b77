// Every supported form, byte for byte against GNU as: all 16 registers, the rsp/rbp/r12/r13
// ModRM and SIB special cases, and the disp8/disp32 and imm8/imm32 boundaries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Assembler, byte, dword, fs, gpr16, gpr32, gpr64, gpr8, gpr8High, gs, qword, rip, word,
  al, ah, ax, bh, cl, cx, eax, mem, ecx, r11, r12, r13, r8, rax, rbp, rcx, rdx, rsp, spl, type Gpr, type Memory,
} from '@libos/encoder';
import { compareWithAs, type Case } from './support/compare.js';
import { form, text } from './support/cases.js';

const DISPS = [0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x7fffffff, -0x80000000];
const IMM_BOUNDS = [0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, -0x80000000];
const ALU_OPS = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'] as const;
const SIZES = [8, 16, 32, 64] as const;
const REGS: Record<number, readonly Gpr[]> = { 8: gpr8, 16: gpr16, 32: gpr32, 64: gpr64 };
const MEM: Record<number, (spec: Parameters<typeof qword>[0]) => Memory> = { 8: byte, 16: word, 32: dword, 64: qword };

function fitsImm(v: number, size: number): boolean {
  if (size === 64) return v >= -0x80000000 && v <= 0x7fffffff;
  return v >= -(2 ** (size - 1)) && v < 2 ** size;
}

function run(name: string, cases: Case[], minimum: number): void {
  test(`${name}: ${cases.length} cases match GNU as`, () => {
    assert.ok(cases.length >= minimum, `expected at least ${minimum} cases, got ${cases.length}`);
    const { mismatches, count } = compareWithAs(cases);
    assert.is(count, cases.length);
    assert.equal(mismatches.slice(0, 20), [], `${mismatches.length} mismatches`);
  });
}

// Addressing: every base with every displacement boundary, every index with every scale.
const addressing: Case[] = [];
for (const base of gpr64) for (const disp of DISPS) addressing.push(form('mov', rax, qword(base, disp)));
for (const base of gpr64) {
  gpr64.forEach((index, i) => {
    if (index === gpr64[4]) return;
    const scale = [1, 2, 4, 8][i % 4] as 1 | 2 | 4 | 8;
    addressing.push(form('mov', qword({ base, index, scale, disp: DISPS[i % DISPS.length] }), r11));
  });
}
for (const index of gpr64) if (index !== rsp) addressing.push(form('lea', rcx, qword({ index, scale: 4, disp: 0x40 })));
addressing.push(form('mov', rax, qword({ disp: 0x1000 })), form('mov', eax, dword({ disp: -8 })));
addressing.push(form('mov', rax, qword({ segment: fs, disp: 0x28 })), form('jmp', qword({ segment: gs, disp: 24 })));
addressing.push(form('mov', qword({ segment: gs, base: rax, index: r12, scale: 2, disp: 8 }), rcx));
addressing.push(form('mov', word({ segment: fs, base: r13 }), 0x1234));
addressing.push(form('mov', rax, qword(rip, 0)), form('jmp', qword(rip, 0)), form('mov', dword(rip, -4), 7));
run('addressing', addressing, 400);

// mov in every width: reg-reg, reg-mem, mem-reg, reg-imm, mem-imm.
const movs: Case[] = [];
for (const size of SIZES) {
  const regs = REGS[size] as readonly Gpr[];
  for (const d of regs) for (const s of regs) movs.push(form('mov', d, s));
  for (const r of regs) movs.push(form('mov', r, (MEM[size] as (s: object) => Memory)({ base: r12, disp: 8 })));
  for (const r of regs) movs.push(form('mov', (MEM[size] as (s: object) => Memory)({ base: rbp }), r));
  for (const imm of IMM_BOUNDS) if (fitsImm(imm, size)) {
    for (const r of [regs[0], regs[3], regs[12]] as Gpr[]) movs.push(form('mov', r, imm));
    movs.push(form('mov', (MEM[size] as (s: object) => Memory)({ base: rsp, disp: -8 }), imm));
  }
}
for (const v of [0xffffffffn, 0x80000000n, 0x123456789abcdef0n, -0x80000001n, 0xffffffffffffffffn]) movs.push(form('mov', r8, v), form('mov', rax, v));
for (const h of gpr8High) movs.push(form('mov', h, al), form('mov', ah, h), form('mov', h, 0x12), form('mov', h, byte({ base: rax })));
movs.push(text('movabs rax, 0x5', (a) => a.movabs(rax, 5)), text('movabs r11, -1', (a) => a.movabs(r11, -1)));
run('mov', movs, 1000);

// add/or/adc/sbb/and/sub/xor/cmp and test.
const alu: Case[] = [];
for (const op of [...ALU_OPS, 'test'] as const) {
  for (const size of SIZES) {
    const regs = REGS[size] as readonly Gpr[];
    const m = (MEM[size] as (s: object) => Memory)({ base: r13, index: rcx, scale: 2, disp: -0x80 });
    for (const r of regs) alu.push(form(op, r, regs[(r.id + 5) % 16] as Gpr), form(op, m, r));
    if (op !== 'test') for (const r of [regs[0], regs[7], regs[9]] as Gpr[]) alu.push(form(op, r, m));
    for (const imm of IMM_BOUNDS) if (fitsImm(imm, size)) {
      for (const r of [regs[0], regs[1], regs[4], regs[13]] as Gpr[]) alu.push(form(op, r, imm));
      alu.push(form(op, m, imm));
    }
  }
  alu.push(form(op, ah, 1), form(op, bh, cl));
}
run('alu and test', alu, 1500);

// push/pop, xchg, lea, and the flag instructions.
const stack: Case[] = [];
for (const r of gpr64) stack.push(form('push', r), form('pop', r), form('push', qword(r, 8)), form('pop', qword(r)));
for (const r of gpr16) stack.push(form('push', r), form('pop', r));
for (const imm of [0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x7fffffff, -0x80000000]) stack.push(form('push', imm));
stack.push(form('push', word({ base: rax })), form('pop', word({ base: rsp, disp: 2 })));
for (const size of SIZES) {
  const regs = REGS[size] as readonly Gpr[];
  for (const x of regs) for (const y of [regs[0], regs[2], regs[11]] as Gpr[]) stack.push(form('xchg', x, y), form('xchg', y, x));
  for (const x of regs) stack.push(form('xchg', x, (MEM[size] as (s: object) => Memory)({ base: rsp, disp: -8 })), form('xchg', (MEM[size] as (s: object) => Memory)({ base: rbp }), x));
}
for (const size of [16, 32, 64]) for (const r of REGS[size] as readonly Gpr[]) stack.push(form('lea', r, qword({ base: rsp, index: r13, scale: 8, disp: -128 })));
for (const m of ['pushfq', 'popfq', 'lahf', 'sahf', 'syscall', 'sysenter', 'int3', 'ud2', 'hlt', 'cpuid', 'rdtsc', 'ret', 'leave', 'cqo', 'cdqe', 'pause', 'mfence', 'lfence', 'sfence', 'rdtscp', 'cld', 'std']) {
  stack.push(form(m));
}
stack.push(text('ret 8', (a) => a.ret(8)), text('int 0x80', (a) => a.int(0x80)), text('int 3', (a) => a.int(3)));
run('stack, xchg, lea and no-operand forms', stack, 600);

// Jumps and calls: to labels (rel8/rel32 boundaries, forward and backward), symbols, registers, memory.
const control: Case[] = [];
for (const gap of [0, 1, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x100]) {
  control.push(text(`jmp 1f\n.fill ${gap}, 1, 0x90\n1:`, (a) => { const l = a.label(); a.jmp(l); a.bytes(new Uint8Array(gap).fill(0x90)); a.bind(l); }));
  control.push(text(`1:\n.fill ${gap}, 1, 0x90\njmp 1b`, (a) => { const l = a.label(); a.bind(l); a.bytes(new Uint8Array(gap).fill(0x90)); a.jmp(l); }));
  control.push(text(`jne 1f\n.fill ${gap}, 1, 0xcc\n1:`, (a) => { const l = a.label(); a.jne(l); a.bytes(new Uint8Array(gap).fill(0xcc)); a.bind(l); }));
  control.push(text(`1:\n.fill ${gap}, 1, 0xcc\nje 1b`, (a) => { const l = a.label(); a.bind(l); a.bytes(new Uint8Array(gap).fill(0xcc)); a.je(l); }));
  control.push(text(`call 1f\n.fill ${gap}, 1, 0xcc\n1:`, (a) => { const l = a.label(); a.call(l); a.bytes(new Uint8Array(gap).fill(0xcc)); a.bind(l); }));
}
const ccs = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g', 'c', 'z', 'nz', 'nae', 'nb', 'nc', 'na', 'nbe', 'pe', 'po', 'nge', 'nl', 'ng', 'nle'];
for (const cc of ccs) {
  control.push(text(`j${cc} 1f\nnop\n1:`, (a) => { const l = a.label(); (a as unknown as Record<string, (l: unknown) => void>)[`j${cc}`]?.call(a, l); a.nop(); a.bind(l); }));
  control.push(text(`j${cc} 1f\n.fill 200, 1, 0x90\n1:`, (a) => { const l = a.label(); a.jcc(cc as 'o', l); a.bytes(new Uint8Array(200).fill(0x90)); a.bind(l); }));
  control.push(text(`j${cc} ext_target`, (a) => { a.jcc(cc as 'o', a.symbol('ext_target')); }));
}
control.push(text('jmp syscall_func', (a) => a.jmp(a.symbol('syscall_func'))));
control.push(text('call handler', (a) => a.call(a.symbol('handler'))));
for (const r of gpr64) control.push(form('jmp', r), form('call', r), form('jmp', qword(r, 0x10)), form('call', qword({ base: rax, index: r === rsp ? rax : r, scale: 8 })));
control.push(text('jmp qword ptr [rip + 0]\n.quad 0x123456789abcdef0', (a) => { a.jmp(qword(rip, 0)); a.qword(0x123456789abcdef0n); }));
control.push(text('lea rcx, [rip + 1f]\njmp syscall_func\n1:', (a) => { const l = a.label(); a.lea(rcx, rip(l)); a.jmp(a.symbol('syscall_func')); a.bind(l); }));
control.push(text('mov rax, qword ptr [rip + data]\nmov dword ptr [rip + data], 5\ncmp byte ptr [rip + data + 3], 7\nret\ndata: .quad 1', (a) => {
  const data = a.label();
  a.mov(rax, qword(rip(data))); a.mov(dword(rip(data)), 5); a.cmp(byte(rip(data, 3)), 7); a.ret(); a.bind(data); a.qword(1);
}));
control.push(text('mov rax, qword ptr [rip + ext_var]\nmov dword ptr [rip + ext_var + 8], 0x12345', (a) => {
  a.mov(rax, qword(rip(a.symbol('ext_var')))); a.mov(dword(rip(a.symbol('ext_var'), 8)), 0x12345);
}));
control.push(text('.quad ext_var\n.quad ext_var2', (a) => { a.qword(a.symbol('ext_var'), a.symbol('ext_var2')); }));
control.push(text('.long ext_var - .\n.long 1f - .\n1:', (a) => { const l = a.label(); a.rel32(a.symbol('ext_var')); a.rel32(l); a.bind(l); }));
control.push(text('.byte 1, 0xff, -1\n.word 0x1234, -2\n.long 0x12345678, -3\n.quad -4', (a) => { a.byte(1, 0xff, -1); a.word(0x1234, -2); a.dword(0x12345678, -3); a.qword(-4); }));
for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 20, 22, 23, 33, 40]) control.push(text(`.nops ${n}`, (a) => a.nop(n)));
for (const [pad, align] of [[1, 16], [3, 16], [5, 32], [0, 8], [7, 64], [33, 64]] as const) {
  control.push(text(`.p2align 6\n.fill ${pad}, 1, 0xcc\n.p2align ${Math.log2(align)}\nret`, (a) => { a.align(64); a.bytes(new Uint8Array(pad).fill(0xcc)); a.align(align); a.ret(); }));
}
control.push(text('nop\n.p2align 4, 0xcc\nret\n.p2align 3, 0x00\nret', (a) => { a.nop().align(16, 0xcc).ret().align(8, 0).ret(); }));
run('control flow, data and alignment', control, 150);

// movzx/movsx/movsxd, the one-operand group, shifts, imul, setcc, cmovcc, processor state.
const more: Case[] = [];
for (const d of [...gpr16, ...gpr32, ...gpr64]) {
  const b8 = gpr8[(d.id + 3) % 16] as Gpr;
  const b16 = gpr16[(d.id + 7) % 16] as Gpr;
  more.push(form('movzx', d, b8), form('movsx', d, b8), form('movzx', d, byte({ base: d.size === 64 ? d : rax, disp: 1 })), form('movsx', d, byte({ base: r12 })));
  if (d.size !== 16) more.push(form('movzx', d, b16), form('movsx', d, word({ base: rbp, disp: -2 })));
}
for (const d of gpr64) more.push(form('movsxd', d, gpr32[(d.id + 1) % 16] as Gpr), form('movsxd', d, dword({ base: rsp, disp: 4 })));
for (const h of gpr8High) more.push(form('movzx', eax, h), form('movsx', cx, h));
for (const op of ['inc', 'dec', 'neg', 'not', 'mul', 'div', 'idiv', 'imul']) {
  for (const size of SIZES) {
    for (const r of REGS[size] as readonly Gpr[]) more.push(form(op, r));
    more.push(form(op, (MEM[size] as (s: object) => Memory)({ base: r13, disp: 0x100 })));
  }
}
for (const op of ['rol', 'ror', 'rcl', 'rcr', 'shl', 'sal', 'shr', 'sar']) {
  for (const size of SIZES) {
    const regs = REGS[size] as readonly Gpr[];
    for (const r of regs) more.push(form(op, r, 1), form(op, r, cl), form(op, r, r.id + 2));
    more.push(form(op, (MEM[size] as (s: object) => Memory)({ base: rsp }), 1), form(op, (MEM[size] as (s: object) => Memory)({ base: rax, index: r8, scale: 4 }), 0xff));
  }
}
for (const size of [16, 32, 64]) {
  const regs = REGS[size] as readonly Gpr[];
  const m = (MEM[size] as (s: object) => Memory)({ base: rbx_(), disp: 0x10 });
  for (const r of regs) {
    const other = regs[(r.id + 9) % 16] as Gpr;
    more.push(form('imul', r, other), form('imul', r, m), form('imul', r, other, 5), form('imul', r, m, 0x1000), form('imul', r, -0x80));
  }
}
const ccNames = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g', 'c', 'z', 'nz', 'nae', 'nbe', 'pe', 'po', 'nl', 'ng'];
for (const cc of ccNames) {
  for (const r of [...gpr8, ...gpr8High]) more.push(form(`set${cc}`, r));
  more.push(form(`set${cc}`, byte({ base: r12, disp: 3 })));
  for (const size of [16, 32, 64]) {
    const regs = REGS[size] as readonly Gpr[];
    for (const r of [regs[0], regs[5], regs[12]] as Gpr[]) more.push(form(`cmov${cc}`, r, regs[(r.id + 1) % 16] as Gpr), form(`cmov${cc}`, r, (MEM[size] as (s: object) => Memory)({ base: rsp, disp: 8 })));
  }
}
for (const op of ['xsave', 'xrstor', 'xsave64', 'xrstor64', 'fxsave', 'fxrstor', 'fxsave64', 'fxrstor64']) {
  for (const base of gpr64) more.push(form(op, mem(base)));
  more.push(form(op, mem({ base: rsp, index: r11, scale: 2, disp: 0x40 })), form(op, mem({ segment: gs, base: r13 })));
}
run('extensions, unary, shifts, imul, setcc, cmovcc, xsave/fxsave', more, 2000);

function rbx_(): Gpr { return gpr64[3] as Gpr; }

test('ah..bh are refused where a REX prefix is needed, and the assembler keeps only what was valid', () => {
  const a = new Assembler();
  const refused: (() => unknown)[] = [
    () => a.mov(ah, spl),
    () => a.mov(ah, byte({ base: r8 })),
    () => a.mov(qword(rax), r8).mov(bh, byte({ base: r12 })),
    () => a.movzx(rdx, ah),
    () => a.xchg(ah, gpr8[9] as Gpr),
  ];
  for (const f of refused) {
    let code: string | undefined;
    try { f(); } catch (e) { code = (e as { code?: string }).code; }
    assert.is(code, 'ENC_INVALID_OPERAND');
  }
  // Only `mov qword [rax], r8` (from the third chain, before its bad mov) was appended.
  assert.is(a.instructionCount, 1);
  assert.equal(Array.from(a.encode({ va: 0n }).bytes), [0x4c, 0x89, 0x00]);
});

test.run();
