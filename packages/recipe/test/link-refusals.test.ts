// What the handler linker refuses, each pinned to its error code and position.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf, SHT_SYMTAB } from '@libos/elfkit';
import {
  compileHandler, compileHandlerSync, LinkError, linkHandlerObject, measureHandlerObject, type LinkErrorCode, type LinkOptions,
} from '@libos/recipe';
import { compileSource, gccObject, harness, writeSource } from './link-helpers.js';

const LAYOUT = { textVa: 0x1000_0000n, dataVa: 0x2000_0000n };
const ASM_FLAGS = ['-fPIC', '-nostdlib'];

/** The LinkError that linking (and measuring) `obj` throws; both must agree. */
function refusal(obj: Uint8Array, opts: LinkOptions = {}, layout = LAYOUT): LinkError {
  let measured: unknown;
  try {
    measureHandlerObject(obj, opts);
  } catch (e) {
    measured = e;
  }
  try {
    linkHandlerObject(obj, layout, opts);
  } catch (e) {
    if (!(e instanceof LinkError)) throw e;
    if (measured !== undefined) assert.is((measured as LinkError).message, e.message, 'measure and link agree');
    return e;
  }
  throw new Error('linked without an error');
}

function expectCode(e: LinkError, code: LinkErrorCode): void {
  assert.is(e.code, code, e.message);
  assert.ok(e.message.startsWith(`${code}: `), e.message);
}

test('an undefined symbol (printf) -> LINK_UNDEFINED_SYMBOL naming it and the call site', async () => {
  const obj = await compileSource(String.raw`
#include <libos-handler.h>
int printf(const char *fmt, ...);
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    printf("syscall %ld\n", nr);
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
`);
  const e = refusal(obj, { file: 'printf-handler.o' });
  expectCode(e, 'LINK_UNDEFINED_SYMBOL');
  assert.is(e.symbol, 'printf');
  assert.is(e.file, 'printf-handler.o');
  assert.is(e.section, '.text');
  assert.type(e.offset, 'number');
  assert.match(e.message, /^LINK_UNDEFINED_SYMBOL: printf-handler\.o: \.text\+0x[0-9a-f]+: undefined symbol printf/);
});

const POINTER_TABLE = String.raw`
#include <libos-handler.h>
static const char *const tab[] = {"alpha", "beta"};
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    if (nr == 1000) return (long)tab[a1 & 1];
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
`;

test('a pointer table (R_X86_64_64) is refused unless absoluteOk, and then holds the strings\' addresses', async () => {
  const obj = await compileSource(POINTER_TABLE);
  const e = refusal(obj);
  expectCode(e, 'LINK_UNSUPPORTED_RELOCATION');
  assert.match(e.message, /R_X86_64_64/);
  assert.match(e.message, /non-PIE/);
  assert.match(e.section ?? '', /^\.data\.rel\.ro/);
  assert.is(e.offset, 0);

  const linked = linkHandlerObject(obj, LAYOUT, { absoluteOk: true });
  const view = new DataView(linked.data.buffer, linked.data.byteOffset, linked.data.byteLength);
  const tab = linked.symbols.find((s) => s.name === 'tab');
  assert.ok(tab);
  const at = Number((tab?.va ?? 0n) - LAYOUT.dataVa);
  const stringAt = (va: bigint): string => {
    const offset = Number(va - LAYOUT.textVa);
    const end = linked.text.indexOf(0, offset);
    return Buffer.from(linked.text.subarray(offset, end)).toString('latin1');
  };
  assert.is(stringAt(view.getBigUint64(at, true)), 'alpha');
  assert.is(stringAt(view.getBigUint64(at + 8, true)), 'beta');
});

test('the same table compiled -fno-PIC -> LINK_UNSUPPORTED_RELOCATION (absolute 32-bit), even with absoluteOk', () => {
  const obj = gccObject(POINTER_TABLE, ['-O2', '-fno-PIC', '-ffreestanding', '-fno-builtin', '-mgeneral-regs-only', '-I', `${process.cwd()}/include`]);
  for (const absoluteOk of [false, true]) {
    const e = refusal(obj, { absoluteOk });
    expectCode(e, 'LINK_UNSUPPORTED_RELOCATION');
    assert.match(e.message, /R_X86_64_32S?\b.*-fPIC/);
    assert.is(e.section, '.text');
  }
});

test('thread-local storage -> LINK_UNSUPPORTED_RELOCATION (general and local-exec models)', async () => {
  const source = String.raw`
static __thread long depth;
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    return ++depth + nr;
}
`;
  for (const cflags of [[], ['-ftls-model=local-exec']]) {
    const e = refusal(await compileSource(source, { cflags }));
    expectCode(e, 'LINK_UNSUPPORTED_RELOCATION');
    assert.match(e.message, /R_X86_64_(TLSLD|TLSGD|TPOFF32|GOTTPOFF)/);
    assert.match(e.message, /thread-local/);
    assert.is(e.section, '.text');
  }
});

test('a GOT reference that is not a mov/call/jmp -> LINK_UNSUPPORTED_RELOCATION naming the symbol and the offset', () => {
  const obj = gccObject(String.raw`
    .text
    .globl libos_handler
    .type libos_handler, @function
libos_handler:
    xor %eax, %eax
    add foo@GOTPCREL(%rip), %rax
    ret
    .size libos_handler, .-libos_handler
    .data
    .globl foo
foo: .quad 1
`, ASM_FLAGS, 'S');
  const e = refusal(obj, { file: 'add.o' });
  expectCode(e, 'LINK_UNSUPPORTED_RELOCATION');
  assert.is(e.symbol, 'foo');
  assert.is(e.offset, 5); // 31 c0, then 48 03 05 <disp32>
  assert.match(e.message, /^LINK_UNSUPPORTED_RELOCATION: add\.o: \.text\+0x5: R_X86_64_REX_GOTPCRELX against foo/);
});

test('no libos_handler -> LINK_NO_HANDLER; a static one is named as such', async () => {
  const none = await compileSource('long other_handler(long nr) { return nr; }\n');
  expectCode(refusal(none), 'LINK_NO_HANDLER');
  assert.match(refusal(none).message, /does not define libos_handler/);
  const local = await compileSource(String.raw`
static long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) { return nr + a1; }
long (*const keep)(long, long, long, long, long, long, long) = libos_handler;
`);
  const e = refusal(local, { absoluteOk: true });
  expectCode(e, 'LINK_NO_HANDLER');
  assert.match(e.message, /static/);
});

test('a compile error -> LINK_COMPILE_FAILED with the compiler\'s first error line', async () => {
  const path = writeSource('long libos_handler(long nr) { return nr +; }\n');
  try {
    await compileHandler(path);
    assert.unreachable('compiled');
  } catch (e) {
    assert.instance(e, LinkError);
    const err = e as LinkError;
    expectCode(err, 'LINK_COMPILE_FAILED');
    assert.is(err.file, path);
    assert.match(err.message, /error: expected expression/);
    assert.not.match(err.message, /\n/);
  }
});

test('a compiler that cannot be run -> LINK_COMPILE_FAILED', async () => {
  const path = writeSource('long libos_handler(long nr) { return nr; }\n');
  try {
    await compileHandler(path, { cc: '/nonexistent/cc' });
    assert.unreachable('compiled');
  } catch (e) {
    expectCode(e as LinkError, 'LINK_COMPILE_FAILED');
    assert.match((e as LinkError).message, /cannot run the C compiler '\/nonexistent\/cc'/);
  }
});

/** `obj` with the sh_addralign of its section `name` set to `align`. */
function withAlign(obj: Uint8Array, name: string, align: bigint): Uint8Array {
  const copy = new Uint8Array(obj);
  const elf = readElf(copy);
  const section = elf.sections.find((x) => x.name === name)!;
  new DataView(copy.buffer).setBigUint64(elf.header.shoff + section.index * 64 + 48, align, true);
  return copy;
}

test('a section alignment that is not a power of two -> LINK_BAD_OBJECT; more than a page -> LINK_UNSUPPORTED_SECTION, at measuring', async () => {
  const obj = await compileSource(String.raw`
static long calls;
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) { return ++calls + nr; }
`);
  for (const section of ['.text', '.bss']) {
    const three = refusal(withAlign(obj, section, 3n));
    expectCode(three, 'LINK_BAD_OBJECT');
    assert.is(three.section, section);
    assert.match(three.message, 'sh_addralign 3 is not a power of two');
    assert.throws(() => measureHandlerObject(withAlign(obj, section, 3n)), /LINK_BAD_OBJECT/);
  }
  // A page is the most the rewrite promises, and it holds at any page-aligned layout.
  assert.not.throws(() => linkHandlerObject(withAlign(obj, '.bss', 4096n), { textVa: 0x1000_0000n, dataVa: 0x2000_1000n }));
  const big = await compileSource(String.raw`
static long table[4] __attribute__((aligned(8192)));
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) { return ++table[nr & 3] + nr; }
`);
  assert.throws(() => measureHandlerObject(big), /LINK_UNSUPPORTED_SECTION: .*sh_addralign 8192 is more than a page \(4096\)/);
});

test('a compiler that does not finish is stopped after the timeout -> LINK_COMPILE_FAILED, sync and async', async () => {
  const path = writeSource('long libos_handler(long nr) { return nr; }\n');
  // A "compiler" that waits: a script that sleeps, then one that reads its input (which is closed).
  const dir = mkdtempSync(join(tmpdir(), 'libos-slow-cc-'));
  const sleeper = join(dir, 'sleepy-cc');
  writeFileSync(sleeper, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
  const reader = join(dir, 'reading-cc');
  writeFileSync(reader, '#!/bin/sh\ncat > /dev/null\nexit 1\n', { mode: 0o755 });
  const started = Date.now();
  for (const run of [() => compileHandler(path, { cc: sleeper, timeoutMs: 300 }), async () => compileHandlerSync(path, { cc: sleeper, timeoutMs: 300 })]) {
    try {
      await run();
      assert.unreachable('compiled');
    } catch (e) {
      expectCode(e as LinkError, 'LINK_COMPILE_FAILED');
      assert.match((e as LinkError).message, `${sleeper} did not finish within 0.3 s and was stopped`);
    }
  }
  assert.ok(Date.now() - started < 10_000, 'stopped, not waited for');
  // Its input ends at once: it fails on its own (exit 1), long before any timeout.
  try {
    await compileHandler(path, { cc: reader, timeoutMs: 20_000 });
    assert.unreachable('compiled');
  } catch (e) {
    expectCode(e as LinkError, 'LINK_COMPILE_FAILED');
    assert.not.match((e as LinkError).message, /did not finish/);
  }
  assert.ok(Date.now() - started < 10_000, 'the reading compiler saw the end of its input');
  rmSync(dir, { recursive: true, force: true });
});

test('text and data more than 2 GiB apart -> LINK_OUT_OF_RANGE; a misaligned part -> LINK_BAD_LAYOUT', async () => {
  const obj = await compileSource(String.raw`
static long calls;
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) { return ++calls + nr; }
`);
  const far = refusal(obj, {}, { textVa: 0x1000_0000n, dataVa: 0x1_1000_0000n });
  expectCode(far, 'LINK_OUT_OF_RANGE');
  assert.is(far.section, '.text');
  assert.match(far.message, /R_X86_64_PC32 to \.bss-0x4 at 0x[0-9a-f]+ does not reach/);
  expectCode(refusal(obj, {}, { textVa: 0x1000_0001n, dataVa: 0x2000_0000n }), 'LINK_BAD_LAYOUT');
});

test('a symbol past the end of its section (a corrupt st_value) -> LINK_BAD_OBJECT naming it, not an internal error later', async () => {
  const obj = await compileSource(String.raw`
static long calls;
long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6) { return ++calls + nr; }
`);
  const elf = readElf(obj);
  const symtab = elf.sections.find((x) => x.type === SHT_SYMTAB)!;
  for (const name of ['calls', 'libos_handler']) {
    const sym = elf.symbols.find((x) => x.name === name)!;
    const bad = obj.slice();
    // st_value 0x7f00_0000_0000: far past its section.
    new DataView(bad.buffer, bad.byteOffset).setBigUint64(symtab.offset + sym.index * 24 + 8, 0x7f0000000000n, true);
    const e = refusal(bad);
    expectCode(e, 'LINK_BAD_OBJECT');
    assert.is(e.symbol, name);
    assert.ok(e.message.includes(`symbol ${name} (at +0x7f0000000000, `) && e.message.includes('lies outside its section'), e.message);
  }
});

test('bytes that are not a relocatable object -> LINK_BAD_OBJECT', () => {
  expectCode(refusal(new Uint8Array([1, 2, 3, 4])), 'LINK_BAD_OBJECT');
  const exe = new Uint8Array(readFileSync(harness()));
  const e = refusal(exe);
  expectCode(e, 'LINK_BAD_OBJECT');
  assert.match(e.message, /not a relocatable object/);
});

test.run();
