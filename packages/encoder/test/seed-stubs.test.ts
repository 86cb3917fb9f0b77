// The seed's call-site sequence and syscall_func stub, and every stub of
// /work/shared/reference/stub-designs.S, assembled by us and by GNU as.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Assembler, al, qword, r10, r11, r8, r9, rax, rbp, rcx, rdi, rdx, rip, rsi, rsp, type ExternalSymbol,
} from '@libos/encoder';
import { assembleSnippets, assembleSource, hex } from './support/gnu-as.js';

const STUBS_PATH = '/work/shared/reference/stub-designs.S';

test('seed call site: leaq 1f(%rip),%rcx; jmp syscall_func; 1: is 48 8d 0d 05 00 00 00 e9 + PC32 -4', () => {
  const a = new Assembler();
  const back = a.label('back');
  a.lea(rcx, rip(back));
  a.jmp(a.symbol('syscall_func'));
  a.bind(back);
  const r = a.encode({ va: 0x401000n });
  assert.is(hex(r.bytes), '48 8d 0d 05 00 00 00 e9 00 00 00 00');
  assert.equal(r.relocations.map((x) => [x.offset, x.symbol, x.addend, x.type]), [[8, 'syscall_func', -4n, 'PC32']]);
  assert.is(r.labelVa(back), 0x40100cn);
  const [gnu] = assembleSnippets(['leaq 1f(%rip),%rcx\njmp syscall_func\n1:'], 'att');
  assert.is(hex(r.bytes), hex(gnu?.bytes ?? new Uint8Array()));
  assert.equal(gnu?.relocations.map((x) => [x.offset, x.symbol, x.addend]), [[8, 'syscall_func', -4n]]);
});

test("the seed listing's `48 8d 0d 06` is wrong: it returns one byte past the 12-byte window", () => {
  // The window is `syscall` + 10 one-byte nops = 12 bytes; lea (7) + jmp rel32 (5) fill it exactly,
  // so the return address is the end of the window and the lea's disp32 is 12 - 7 = 5.
  const a = new Assembler();
  const back = a.label();
  a.lea(rcx, rip(back));
  a.jmp(a.symbol('syscall_func'));
  a.bind(back);
  const r = a.encode({ va: 0n });
  const windowLength = 2 + 10;
  assert.is(r.bytes.length, windowLength);
  const disp = r.bytes[3];
  assert.is(disp, 5);
  assert.is.not(disp, 6, 'the listing in the RFC says 06, which would resume at offset 13');
  assert.is(7 + (disp ?? 0), windowLength);
});

type Build = (a: Assembler, handler: ExternalSymbol) => void;

/** Our versions of the stub macros and functions of stub-designs.S (and the RFC's syscall_func). */
const STUBS: Record<string, Build> = {
  SEED: (a, h) => {
    a.xchg(qword(rsp, -8), r11).pushfq().xchg(qword(rsp), r11).sub(rsp, 120).push(r11).push(rcx).call(h)
      .pop(rcx).pop(r11).add(rsp, 120).xchg(qword(rsp), r11).popfq().xchg(qword(rsp, -8), r11).jmp(rcx);
  },
  SEED_NOPF: (a, h) => {
    a.xchg(r11, qword(rsp, -8)).lea(rsp, qword(rsp, -8)).xchg(r11, qword(rsp)).sub(rsp, 120).push(r11).push(rcx).call(h)
      .pop(rcx).pop(r11).add(rsp, 120).xchg(r11, qword(rsp)).lea(rsp, qword(rsp, 8)).xchg(r11, qword(rsp, -8)).jmp(rcx);
  },
  NOLOCK: (a, h) => {
    a.lea(rsp, qword(rsp, -128)).pushfq().push(rcx).call(h).pop(rcx).mov(r11, qword(rsp)).popfq().lea(rsp, qword(rsp, 128)).jmp(rcx);
  },
  RELAXED: (a, h) => { a.push(r11).push(rcx).call(h).pop(rcx).pop(r11).jmp(rcx); },
  RELAXED_PF: (a, h) => { a.pushfq().push(r11).push(rcx).call(h).pop(rcx).pop(r11).popfq().jmp(rcx); },
  RELAXED_RZ: (a, h) => {
    a.lea(rsp, qword(rsp, -128)).push(r11).push(rcx).call(h).pop(rcx).pop(r11).lea(rsp, qword(rsp, 128)).jmp(rcx);
  },
  LAHFSTUB: (a, h) => {
    a.lea(rsp, qword(rsp, -128)).push(rcx).mov(r11, rax).seto(al).lahf().xchg(rax, r11).push(r11).call(h)
      .pop(r11).xchg(rax, r11).add(al, 0x7f).sahf().mov(rax, r11).pushfq().pop(r11).pop(rcx).lea(rsp, qword(rsp, 128)).jmp(rcx);
  },
};

const FUNCTIONS: Record<string, (a: Assembler) => void> = {
  handler_cached: (a) => { a.mov(rax, qword(rip(a.symbol('cached_pid')))).ret(); },
  handler_pass: (a) => { a.syscall().ret(); },
  handler_cwrap: (a) => {
    a.push(rbp).mov(rbp, rsp).and(rsp, -16).push(0).push(r9).push(r8).push(r10).push(rdx).push(rsi).push(rdi).push(rax)
      .mov(rdi, rsp).call(a.symbol('c_dispatch')).add(rsp, 8).pop(rdi).pop(rsi).pop(rdx).pop(r10).pop(r8).pop(r9).leave().ret();
  },
  zp_cached: (a) => { a.pop(rax).mov(rax, qword(rip(a.symbol('cached_pid')))).ret(); },
  zp_pass: (a) => { a.pop(rax).syscall().ret(); },
  zp_full: (a) => {
    a.pop(rax).push(rbp).mov(rbp, rsp).and(rsp, -16).push(r11).push(r9).push(r8).push(rdi).push(rsi).push(rdx).push(rcx)
      .push(qword(rbp, 8)).push(rax).push(r10).call(a.symbol('zp_syscall_hook')).pop(r10).add(rsp, 16)
      .pop(rcx).pop(rdx).pop(rsi).pop(rdi).pop(r8).pop(r9).pop(r11).leave().ret();
  },
};
const MACROS: Record<string, string> = {
  seed: 'SEED', seed_nopf: 'SEED_NOPF', nolock: 'NOLOCK', relaxed: 'RELAXED', relaxed_pf: 'RELAXED_PF', relaxed_rz: 'RELAXED_RZ', lahf: 'LAHFSTUB',
};
for (const prefix of Object.keys(MACROS)) {
  for (const h of ['cached', 'pass', 'cwrap']) {
    FUNCTIONS[`${prefix}_${h}`] = (a) => (STUBS[MACROS[prefix] as string] as Build)(a, a.symbol(`handler_${h}`));
  }
}

test('every stub and handler of stub-designs.S assembles to the bytes and relocations GNU as gives', () => {
  const object = assembleSource(readFileSync(STUBS_PATH, 'utf8'));
  const names = Object.keys(FUNCTIONS);
  assert.is(names.length, 27);
  for (const name of names) {
    const sym = object.symbols.get(name);
    assert.ok(sym !== undefined && sym.size > 0, `as defines ${name}`);
    const a = new Assembler();
    (FUNCTIONS[name] as (a: Assembler) => void)(a);
    const r = a.encode({ va: BigInt(sym.value) });
    assert.is(hex(r.bytes), hex(object.text.subarray(sym.value, sym.value + sym.size)), name);
    const expected = object.relocations
      .filter((x) => x.offset >= sym.value && x.offset < sym.value + sym.size)
      .map((x) => `${x.offset - sym.value}:${x.symbol}:${x.addend}`);
    assert.equal(r.relocations.map((x) => `${x.offset}:${x.symbol}:${x.addend}`), expected, name);
  }
});

test('the RFC syscall_func stub matches GNU as', () => {
  const source = `syscall_func:
        xchgq %r11, -8(%rsp)
        pushfq
        xchgq %r11, (%rsp)
        subq $120, %rsp
        pushq %r11
        pushq %rcx
        callq libos_entry
        popq %rcx
        popq %r11
        addq $120, %rsp
        xchgq %r11, (%rsp)
        popfq
        xchgq %r11, -8(%rsp)
        jmpq *%rcx`;
  const [gnu] = assembleSnippets([source], 'att');
  const a = new Assembler();
  (STUBS.SEED as Build)(a, a.symbol('libos_entry'));
  const r = a.encode({ va: BigInt(gnu?.offset ?? 0) });
  assert.is(hex(r.bytes), hex(gnu?.bytes ?? new Uint8Array()));
  assert.is(hex(r.bytes.subarray(0, 5)), '4c 87 5c 24 f8');
  assert.equal(r.relocations.map((x) => [x.offset, x.symbol, x.addend]), [[18, 'libos_entry', -4n]]);
});

test.run();
