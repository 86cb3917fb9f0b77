// Errors as values with codes, labels, relaxation, symbols and the no-half-built guarantee.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Assembler, EncoderError, ah, al, byte, dword, eax, ecx, qword, r11, r8b, rax, rcx, rip, rsp, r12, word,
} from '@libos/encoder';
import * as encoder from '@libos/encoder';
import { hex } from './support/gnu-as.js';

function expectError(f: () => unknown, code: string, fields: Partial<Pick<EncoderError, 'mnemonic' | 'operandIndex' | 'instructionIndex'>> = {}): EncoderError {
  try {
    f();
  } catch (e) {
    assert.instance(e, EncoderError);
    const err = e as EncoderError;
    assert.is(err.code, code, err.message);
    for (const [k, v] of Object.entries(fields)) assert.is((err as unknown as Record<string, unknown>)[k], v, `${k} of ${err.message}`);
    return err;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('operand errors name the instruction and the operand, and append nothing', () => {
  const a = new Assembler();
  a.nop().nop();
  expectError(() => a.mov(rax, ecx), 'ENC_OPERAND_SIZE_MISMATCH', { mnemonic: 'mov', operandIndex: 1, instructionIndex: 2 });
  expectError(() => a.mov(rax, qword({ base: rax, index: rsp })), 'ENC_INVALID_OPERAND', { mnemonic: 'mov', operandIndex: 1, instructionIndex: 2 });
  expectError(() => a.lea(rcx, qword({ base: eax as never })), 'ENC_INVALID_OPERAND', { operandIndex: 1 });
  expectError(() => a.mov(ah, r8b), 'ENC_INVALID_OPERAND', { operandIndex: 0 });
  expectError(() => a.add(rax, 0x80000000), 'ENC_IMMEDIATE_RANGE', { mnemonic: 'add', operandIndex: 1 });
  expectError(() => a.mov(al, 256), 'ENC_IMMEDIATE_RANGE', { operandIndex: 1 });
  expectError(() => a.mov(qword(rsp), 0x80000000), 'ENC_IMMEDIATE_RANGE');
  expectError(() => a.push(0x80000000), 'ENC_IMMEDIATE_RANGE', { mnemonic: 'push', operandIndex: 0 });
  expectError(() => a.mov(rax, qword(rsp, 0x80000000)), 'ENC_IMMEDIATE_RANGE', { operandIndex: 1 });
  expectError(() => a.mov(rax, qword({ base: rax, scale: 3 as never, index: rcx })), 'ENC_INVALID_OPERAND');
  expectError(() => a.mov(rax, qword({ base: rax, scale: 4 })), 'ENC_INVALID_OPERAND');
  expectError(() => a.mov(rax, qword({ base: rip, index: rcx })), 'ENC_INVALID_OPERAND');
  // The overloads reject these at compile time; plain JavaScript callers get the error value.
  expectError(() => a.mov(qword(rsp), qword(rsp, 8) as never), 'ENC_UNSUPPORTED_FORM');
  expectError(() => a.add(qword(rsp), qword(rsp, 8) as never), 'ENC_UNSUPPORTED_FORM');
  expectError(() => a.add(qword(rsp), dword(rsp) as never), 'ENC_OPERAND_SIZE_MISMATCH');
  expectError(() => a.add(rax, word(rsp)), 'ENC_OPERAND_SIZE_MISMATCH', { operandIndex: 1 });
  expectError(() => a.inc({ ...qword(rsp), size: undefined }), 'ENC_OPERAND_SIZE_MISMATCH');
  expectError(() => a.shl(rax, rcx), 'ENC_OPERAND_SIZE_MISMATCH', { operandIndex: 1 });
  expectError(() => a.movzx(eax, eax), 'ENC_OPERAND_SIZE_MISMATCH');
  expectError(() => a.push(ecx), 'ENC_OPERAND_SIZE_MISMATCH');
  expectError(() => a.jmp(ecx), 'ENC_OPERAND_SIZE_MISMATCH');
  expectError(() => a.seto(eax), 'ENC_OPERAND_SIZE_MISMATCH');
  expectError(() => a.int(256), 'ENC_IMMEDIATE_RANGE');
  expectError(() => a.align(3), 'ENC_INVALID_ALIGNMENT');
  expectError(() => a.nop(0), 'ENC_INVALID_ALIGNMENT');
  expectError(() => a.mov(rax, 1.5), 'ENC_IMMEDIATE_RANGE');
  assert.is(a.instructionCount, 2);
  assert.is(hex(a.encode({ va: 0n }).bytes), '90 90');
  assert.is(a.mov(rax, rcx).instructionCount, 3, 'still usable after errors');
});

test('the error message carries the code, mnemonic and operand', () => {
  const err = expectError(() => new Assembler().mov(qword({ base: rax, index: rsp }), rcx), 'ENC_INVALID_OPERAND');
  assert.match(err.message, /ENC_INVALID_OPERAND: mov: rsp cannot be an index register \(operand 0\) \(instruction 0\)/);
});

test('an unbound label fails encode with the referencing instruction, and the assembler stays usable', () => {
  const a = new Assembler();
  const l = a.label('later');
  a.nop();
  a.jne(l);
  expectError(() => a.encode({ va: 0x1000n }), 'ENC_UNBOUND_LABEL', { mnemonic: 'jne', instructionIndex: 1 });
  a.bind(l);
  assert.is(hex(a.encode({ va: 0x1000n }).bytes), '90 75 00');
  expectError(() => a.bind(l), 'ENC_LABEL_REBOUND');
  const other = new Assembler();
  expectError(() => other.jmp(l), 'ENC_FOREIGN_LABEL');
  expectError(() => other.lea(rax, rip(l)), 'ENC_FOREIGN_LABEL');
  assert.is(other.instructionCount, 0);
});

test('rel32 out of range: branches, RIP-relative operands and resolved symbols', () => {
  const a = new Assembler();
  a.jmp(0x1_0000_0000n);
  expectError(() => a.encode({ va: 0x1000n }), 'ENC_REL32_OUT_OF_RANGE', { mnemonic: 'jmp', instructionIndex: 0 });
  assert.is(a.encode({ va: 0x1_0000_0000n - 0x7000_0000n }).bytes.length, 5);
  const b = new Assembler();
  b.nop().mov(rax, qword(rip(0x9000_0000n)));
  expectError(() => b.encode({ va: 0x1000n }), 'ENC_REL32_OUT_OF_RANGE', { mnemonic: 'mov', instructionIndex: 1 });
  const c = new Assembler();
  c.call(c.symbol('far_away'));
  expectError(() => c.encode({ va: 0n, symbols: { far_away: 0x8000_0005n } }), 'ENC_REL32_OUT_OF_RANGE');
  assert.is(hex(c.encode({ va: 0n, symbols: { far_away: 0x8000_0004n } }).bytes), 'e8 ff ff ff 7f');
});

test('symbols given to encode are resolved; the others stay relocations', () => {
  const a = new Assembler();
  a.call(a.symbol('known')).jmp(a.symbol('unknown')).mov(rax, qword(rip(a.symbol('known'), 8))).qword(a.symbol('known'), a.symbol('unknown'));
  const r = a.encode({ va: 0x400000n, symbols: new Map([['known', 0x400100n]]) });
  assert.is(hex(r.bytes.subarray(0, 5)), `e8 ${hex(Uint8Array.of(0xfb, 0, 0, 0))}`);
  // mov at 0x40000a, 7 bytes: disp = 0x400108 - 0x400011 = 0xf7
  assert.is(hex(r.bytes.subarray(10, 17)), '48 8b 05 f7 00 00 00');
  assert.is(hex(r.bytes.subarray(17, 25)), '00 01 40 00 00 00 00 00');
  assert.equal(r.relocations.map((x) => [x.offset, x.symbol, x.addend, x.type, x.branch, x.instructionIndex]), [
    [6, 'unknown', -4n, 'PC32', true, 1],
    [25, 'unknown', 0n, 'ABS64', false, 3],
  ]);
});

test('symbol addresses may be numbers; a value that is no address is ENC_INVALID_OPERAND of the first instruction using it', () => {
  const a = new Assembler();
  a.nop().call(a.symbol('f')).mov(rax, qword(rip(a.symbol('f')))).qword(a.symbol('f'));
  const asBigint = a.encode({ va: 0x400000n, symbols: { f: 0x400100n } });
  const asNumber = a.encode({ va: 0x400000n, symbols: { f: 0x400100 } });
  assert.equal(asNumber.bytes, asBigint.bytes);
  assert.equal(asNumber.relocations, []);
  assert.equal(a.encode({ va: 0x400000n, symbols: new Map([['f', 0x400100]]) }).bytes, asBigint.bytes);
  for (const bad of [-1, 1.5, 2 ** 53, Number.NaN, '0x400100', null]) {
    const err = expectError(() => a.encode({ va: 0x400000n, symbols: { f: bad as never } }), 'ENC_INVALID_OPERAND', { mnemonic: 'call', instructionIndex: 1 });
    assert.match(err.message, /symbol f: address .* is not a non-negative integer/);
  }
  // A bad value for a symbol nothing references is not looked at.
  assert.equal(a.encode({ va: 0x400000n, symbols: { f: 0x400100, g: -1 } }).bytes, asBigint.bytes);
});

test('the public surface has no gprOf (the register tables gpr64..gpr8 are the way to index registers)', () => {
  assert.not.ok('gprOf' in encoder);
  assert.is(encoder.gpr64[5], encoder.rbp);
});

test('labels: placements, qword(label) is an absolute address, rel32 data', () => {
  const a = new Assembler();
  const start = a.label('start');
  const end = a.label('end');
  const unused = a.label('unused');
  a.bind(start).nop(3).qword(end).rel32(start).bind(end);
  const r = a.encode({ va: 0x7000n });
  assert.equal(r.labels.map((p) => [p.name, p.offset, p.va]), [['start', 0, 0x7000n], ['end', 15, 0x700fn]]);
  assert.is(r.labelVa(end), 0x700fn);
  const { labelVa } = r;
  assert.is(labelVa(start), 0x7000n, 'labelVa works detached from its result');
  assert.is(r.labelOffset(end), 15);
  assert.is(hex(r.bytes.subarray(3, 11)), '0f 70 00 00 00 00 00 00');
  assert.is(hex(r.bytes.subarray(11, 15)), 'f5 ff ff ff');
  expectError(() => r.labelVa(unused), 'ENC_UNBOUND_LABEL');
  assert.equal(r.instructionOffsets, [0, 3, 11, 15]);
});

test('relaxation reaches a fixed point when growing one branch pushes another out of rel8', () => {
  // j1 jumps over j2 and 124 bytes: it fits only while j2 is short; j2 must grow (its target is
  // 130 bytes on), which pushes j1 out of range too.
  const a = new Assembler();
  const t1 = a.label();
  const t2 = a.label();
  a.jmp(t1);
  a.jmp(t2);
  a.bytes(new Uint8Array(124));
  a.bind(t1);
  a.bytes(new Uint8Array(6));
  a.bind(t2);
  const r = a.encode({ va: 0n });
  assert.is(r.bytes[0], 0xe9, 'j1 grew');
  assert.is(r.bytes[5], 0xe9, 'j2 grew');
  assert.is(r.labelOffset(t1), 10 + 124);
  // { near: true } keeps rel32; an absolute target relaxes like a label.
  const near = new Assembler();
  const l = near.label();
  near.jmp(l, { near: true }).je(l, { near: true }).bind(l).jmp(0x1010n);
  assert.is(hex(near.encode({ va: 0x1000n }).bytes), 'e9 06 00 00 00 0f 84 00 00 00 00 eb 03');
});

test('alignment follows the virtual address and encode is deterministic', () => {
  const a = new Assembler();
  a.nop().align(16).ret().align(8, 0xcc).int3();
  const r1 = a.encode({ va: 0x1003n });
  assert.is(r1.bytes.length, 1 + 12 + 1 + 7 + 1);
  assert.is(hex(r1.bytes.subarray(14, 21)), 'cc cc cc cc cc cc cc');
  const r2 = a.encode({ va: 0x1003n });
  assert.equal(r1.bytes, r2.bytes);
  assert.is(a.encode({ va: 0x100fn }).bytes.length, 1 + 0 + 1 + 7 + 1);
});

test('the issue example assembles as stated', () => {
  const a = new Assembler();
  const back = a.label();
  a.lea(rcx, rip(back));
  a.jmp(a.symbol('syscall_func'));
  a.bind(back);
  a.mov(qword(rsp, -8), r11);
  a.lea(rsp, qword(rsp, -128));
  a.mov(rax, qword({ base: r12, index: r11, scale: 8, disp: 0x80 }));
  a.nop();
  const { bytes, relocations, labels } = a.encode({ va: 0x401000n });
  assert.is(hex(bytes.subarray(0, 8)), '48 8d 0d 05 00 00 00 e9');
  assert.is(hex(bytes.subarray(12, 17)), '4c 89 5c 24 f8');
  assert.is(relocations.length, 1);
  assert.is(labels[0]?.va, 0x40100cn);
});

test.run();
