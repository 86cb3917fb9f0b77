// How the handler linker resolves each accepted relocation, checked by decoding the linked code.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  compileHandlerSync, handlerIncludeDir, HANDLER_CFLAGS, linkHandlerObject, loadHandler, measureHandlerObject, type HandlerLayout, type LinkedHandler,
} from '@libos/recipe';
import { compileSource, decodeRefs, gccObject, instructionStarts, writeSource } from './link-helpers.js';

// Data 1.5 GiB below text: every reference crosses most of the rel32 range.
const LAYOUT: HandlerLayout = { textVa: 0x7000_0000n, dataVa: 0x1000_0000n };

function va(linked: LinkedHandler, name: string): bigint {
  const s = linked.symbols.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no symbol ${name}`);
  return s.va;
}

const GOT_ASM = String.raw`
    .text
    .globl libos_handler
    .type libos_handler, @function
libos_handler:
    mov counter@GOTPCREL(%rip), %rax
    mov counter@GOTPCREL(%rip), %r11d
    call *helper@GOTPCREL(%rip)
    jmp *helper@GOTPCREL(%rip)
    .size libos_handler, .-libos_handler
    .globl helper
    .type helper, @function
helper:
    ret
    .size helper, .-helper
    .data
    .globl counter
    .type counter, @object
counter: .quad 0
    .size counter, 8
`;

for (const [label, flags] of [
  ['GOTPCRELX / REX_GOTPCRELX', ['-fPIC']],
  ['plain GOTPCREL (as -mrelax-relocations=no)', ['-fPIC', '-Wa,-mrelax-relocations=no']],
] as const) {
  test(`${label}: mov becomes lea, call and jmp become direct, all reaching the symbols`, () => {
    const obj = gccObject(GOT_ASM, [...flags], 'S');
    const linked = linkHandlerObject(obj, LAYOUT);
    const refs = decodeRefs(linked.text, LAYOUT.textVa);
    const counter = va(linked, 'counter');
    const helper = va(linked, 'helper');
    assert.equal(refs.map((r) => r.text.split(/\s+/)[0]), ['lea', 'lea', 'call', 'jmp']);
    assert.match(refs[0]?.text ?? '', /%rax$/);
    assert.match(refs[1]?.text ?? '', /%r11d$/);
    assert.equal(refs.map((r) => r.ripTarget ?? r.branchTarget), [counter, counter, helper, helper]);
    // Both keep the original 6 bytes: 67 e8 rel32 (addr32 call), and e9 rel32 then a nop.
    const callOffset = Number((refs[2]?.va ?? 0n) - LAYOUT.textVa);
    assert.equal([...linked.text.subarray(callOffset, callOffset + 2)], [0x67, 0xe8]);
    const jmpOffset = Number((refs[3]?.va ?? 0n) - LAYOUT.textVa);
    assert.is(jmpOffset, callOffset + 6);
    assert.is(linked.text[jmpOffset], 0xe9);
    assert.is(linked.text[jmpOffset + 5], 0x90);
  });
}

test('compiled C: a global reached through the GOT, calls to a global function (PLT32, and GOTPCRELX with -fno-plt)', async () => {
  const source = String.raw`
long shared_total;
__attribute__((noinline)) long bump(long by) { shared_total += by; return shared_total; }
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) { return bump(nr) + bump(a1); }
`;
  for (const cflags of [[], ['-fno-plt']]) {
    const linked = linkHandlerObject(await compileSource(source, { cflags }), LAYOUT);
    const refs = decodeRefs(linked.text, LAYOUT.textVa);
    const total = va(linked, 'shared_total');
    const bump = va(linked, 'bump');
    assert.ok(refs.some((r) => r.ripTarget === total && r.text.startsWith('lea')), `lea of shared_total (${cflags.join(' ')})`);
    const calls = refs.filter((r) => /call|jmp/.test(r.text) && (r.branchTarget !== undefined));
    assert.ok(calls.length >= 1 && calls.every((r) => r.branchTarget === bump), calls.map((r) => r.text).join('; '));
    assert.ok(refs.every((r) => !/\*/.test(r.text)), 'no indirect call through a GOT slot is left');
  }
});

test('code split into .text and .text.unlikely: branches across the two land on instruction starts', async () => {
  const linked = linkHandlerObject(await compileSource(String.raw`
#include <libos-handler.h>
static long errors;
__attribute__((cold, noinline)) static long bad(long nr) { errors++; return -nr; }
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    if (__builtin_expect(nr < 0, 0)) { errors += 2; return bad(nr) + errors; }
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
`), LAYOUT);
  const funcs = linked.symbols.filter((s) => s.type === 'func');
  assert.ok(funcs.length >= 2, funcs.map((f) => f.name).join(', '));
  const codeEnd = funcs.reduce((end, f) => (f.va + BigInt(f.size) > end ? f.va + BigInt(f.size) : end), LAYOUT.textVa);
  const code = linked.text.subarray(0, Number(codeEnd - LAYOUT.textVa));
  const starts = instructionStarts(code, LAYOUT.textVa);
  const branches = decodeRefs(code, LAYOUT.textVa).filter((r) => r.branchTarget !== undefined);
  assert.ok(branches.length > 0);
  for (const b of branches) assert.ok(starts.has(b.branchTarget as bigint), `${b.text} at 0x${b.va.toString(16)}`);
  const hot = funcs.find((f) => f.name === 'libos_handler');
  assert.ok(branches.some((b) => hot !== undefined && b.va >= hot.va && b.va < hot.va + BigInt(hot.size) &&
    ((b.branchTarget as bigint) < hot.va || (b.branchTarget as bigint) >= hot.va + BigInt(hot.size))), 'a branch leaves libos_handler for the cold section');
});

test('COMMON symbols (-fcommon) are allocated in the bss, after the initialised data', async () => {
  const linked = linkHandlerObject(await compileSource(String.raw`
long tentative_counter;
long tentative_array[100];
long initialised = 3;
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    tentative_array[nr & 63] = initialised;
    return ++tentative_counter;
}
`, { cflags: ['-fcommon'] }), LAYOUT);
  const counter = linked.symbols.find((s) => s.name === 'tentative_counter');
  const array = linked.symbols.find((s) => s.name === 'tentative_array');
  assert.is(counter?.size, 8);
  assert.is(array?.size, 800);
  assert.is(linked.data.length, 8); // only `initialised` has bytes in the file
  for (const s of [counter, array]) {
    const off = Number((s?.va ?? 0n) - LAYOUT.dataVa);
    assert.ok(off >= linked.data.length && off + (s?.size ?? 0) <= linked.dataMemSize, `${s?.name} in the bss`);
    assert.is(off % 8, 0);
  }
  const refs = decodeRefs(linked.text, LAYOUT.textVa);
  assert.ok(refs.some((r) => r.ripTarget === counter?.va));
  assert.ok(refs.some((r) => r.ripTarget === array?.va));
});

test('R_X86_64_64 against an absolute symbol is accepted without absoluteOk (no load bias applies)', () => {
  const obj = gccObject(String.raw`
    .text
    .globl libos_handler
    .type libos_handler, @function
libos_handler:
    mov magic_word(%rip), %rax
    ret
    .size libos_handler, .-libos_handler
    .data
magic_word: .quad MAGIC + 1
    # Defined after its use, so gas emits R_X86_64_64 against it instead of folding it.
    .globl MAGIC
    MAGIC = 0x123456789
`, ['-fPIC'], 'S');
  const linked = linkHandlerObject(obj, LAYOUT);
  const view = new DataView(linked.data.buffer, linked.data.byteOffset, linked.data.byteLength);
  assert.is(view.getBigUint64(0, true), 0x12345678an);
});

test('a PC-relative reference to an absolute symbol is refused unless absoluteOk', () => {
  const obj = gccObject(String.raw`
    .text
    .globl libos_handler
    .type libos_handler, @function
libos_handler:
    lea FIXED(%rip), %rax
    ret
    .size libos_handler, .-libos_handler
    # Defined after its use, so gas emits a PC32 relocation against it instead of folding it.
    .globl FIXED
    FIXED = 0x400000
`, ['-fPIC'], 'S');
  try {
    linkHandlerObject(obj, LAYOUT);
    assert.unreachable('linked');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'LINK_UNSUPPORTED_RELOCATION');
    assert.match(String(e), /absolute symbol FIXED/);
  }
  const linked = linkHandlerObject(obj, { textVa: 0x1000_0000n, dataVa: 0x2000_0000n }, { absoluteOk: true });
  assert.is(decodeRefs(linked.text, 0x1000_0000n)[0]?.ripTarget, 0x400000n);
});

test('compileHandler runs $CC with its arguments and appends cflags', async () => {
  const saved = process.env['CC'];
  process.env['CC'] = 'gcc -DFROM_CC=40';
  try {
    const obj = await compileSource('long libos_handler(long nr) { return FROM_CC + EXTRA; }\n', { cflags: ['-DEXTRA=2'] });
    const linked = linkHandlerObject(obj, LAYOUT);
    // mov $42,%eax; ret
    assert.equal([...linked.text.subarray(0, 6)], [0xb8, 42, 0, 0, 0, 0xc3]);
  } finally {
    if (saved === undefined) delete process.env['CC'];
    else process.env['CC'] = saved;
  }
});

test('loadHandler takes an object as it is and compiles anything else', async () => {
  const source = writeSource('long libos_handler(long nr) { return nr + 1; }\n');
  const compiled = await loadHandler(source);
  const objectPath = `${source}.o`;
  writeFileSync(objectPath, compiled);
  assert.equal(await loadHandler(objectPath), compiled);
  try {
    await loadHandler(`${source}.missing`);
    assert.unreachable('loaded');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'LINK_COMPILE_FAILED');
  }
});

test('usesVectorRegisters: false with the handler flags, true (with the instruction) without -mgeneral-regs-only', async () => {
  const source = String.raw`
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    return nr == 1000 ? (long)((double)a1 * 1.5) : nr;
}
`;
  const ok = linkHandlerObject(gccObject('long libos_handler(long nr) { return nr * 3; }\n', [...HANDLER_CFLAGS]), LAYOUT);
  assert.is(ok.usesVectorRegisters, false);
  assert.is(ok.vectorUse, undefined);
  const flags = HANDLER_CFLAGS.filter((f) => f !== '-mgeneral-regs-only' && f !== '-c');
  const vectorObj = gccObject(source, flags);
  const vector = linkHandlerObject(vectorObj, LAYOUT);
  assert.is(vector.usesVectorRegisters, true);
  // measure knows before any layout, at the same instruction.
  const measured = measureHandlerObject(vectorObj);
  assert.is(measured.usesVectorRegisters, true);
  assert.is(BigInt(measured.vectorUse?.offset ?? -1), (vector.vectorUse?.va ?? 0n) - LAYOUT.textVa);
  assert.is(measureHandlerObject(gccObject('long libos_handler(long nr) { return nr * 3; }\n', [...HANDLER_CFLAGS])).usesVectorRegisters, false);
  assert.match(vector.vectorUse?.instruction ?? '', /xmm/);
  assert.ok((vector.vectorUse?.va ?? 0n) >= LAYOUT.textVa);
  // Under -mgeneral-regs-only the same source does not compile: floating point needs vector registers.
  try {
    await compileSource(source);
    assert.unreachable('compiled');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'LINK_COMPILE_FAILED');
  }
});

test('compileHandlerSync and the shipped header: the raw syscall helpers and <sys/syscall.h> compile freestanding', () => {
  assert.ok(existsSync(join(handlerIncludeDir(), 'libos-handler.h')));
  const obj = compileHandlerSync(writeSource(String.raw`
#include <libos-handler.h>
#include <sys/syscall.h>
_Static_assert(LIBOS_NR_getppid == SYS_getppid, "numbers agree");
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    if (nr == LIBOS_NR_getpid) return libos_syscall0(SYS_getpid);
    if (nr == 1000) return libos_syscall1(SYS_close, a1) + libos_syscall2(1000, a1, a2) + libos_syscall3(1000, a1, a2, a3) +
        libos_syscall4(1000, a1, a2, a3, a4) + libos_syscall5(1000, a1, a2, a3, a4, a5);
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
`), { cflags: ['-Wall', '-Werror'] });
  const linked = linkHandlerObject(obj, LAYOUT);
  assert.is(linked.entryVa, LAYOUT.textVa);
  assert.is(linked.usesVectorRegisters, false);
  assert.is(linked.dataMemSize, 0);
});

test.run();
