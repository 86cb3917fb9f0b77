// Links a real gcc-compiled handler at two far-apart layouts, checks the linked code by decoding
// it, and runs it in a harness that maps the two parts at their link addresses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linkHandlerObject, measureHandlerObject, type HandlerLayout, type LinkedHandler } from '@libos/recipe';
import { compileSource, decodeRefs, instructionStarts, runInHarness } from './link-helpers.js';

const RUN_HANDLER = String.raw`
#include <libos-handler.h>
#include <sys/syscall.h>

/* Global, so -fPIC reaches it through the GOT: the linker relaxes that load into a lea. */
long libos_calls;
/* Zero-initialised: .bss. */
static long seen[512];
/* Initialised and written: .data. */
static long bias = 7;
/* A string table without pointers: .rodata, reached PC-relatively. */
static const char names[][8] = {"read", "write", "open", "close"};

static long copy_name(long nr, char *out, long cap)
{
    if (nr < 0 || nr > 3 || cap <= 0) return -22;
    long n = 0;
    while (n + 1 < cap && names[nr][n] != 0) {
        out[n] = names[nr][n];
        n++;
    }
    out[n] = 0;
    return n;
}

long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    libos_calls++;
    if (nr >= 0 && nr < 512) seen[nr]++;
    switch (nr) {
    case SYS_getppid: return 4242;
    case 1000: return libos_calls;
    case 1001: return copy_name(a1, (char *)a2, a3);
    case 1002: return seen[a1 & 511];
    case 1003: return bias;
    case 1004: bias = a1; return 0;
    }
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
`;

// Text and data 1.75 GiB apart, data above; then data 1 GiB below text, high in the address space.
const LAYOUTS: HandlerLayout[] = [
  { textVa: 0x1000_0000n, dataVa: 0x8000_0000n },
  { textVa: 0x6000_0000_0000n, dataVa: 0x5fff_c000_0000n },
];

let obj: Uint8Array;

test.before(async () => {
  obj = await compileSource(RUN_HANDLER);
});

function symbol(linked: LinkedHandler, name: string): { va: bigint; size: number } {
  const s = linked.symbols.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no symbol ${name}`);
  return s;
}

test('measure: sizes before addresses, the same as the linked parts', () => {
  const m = measureHandlerObject(obj);
  assert.ok(m.textSize > 0 && m.textAlign >= 1);
  assert.is(m.dataFileSize, 8); // bias
  assert.ok(m.dataMemSize >= 8 + 8 + 512 * 8); // bias, libos_calls, seen
  const linked = linkHandlerObject(obj, LAYOUTS[0] as HandlerLayout);
  assert.is(linked.text.length, m.textSize);
  assert.is(linked.data.length, m.dataFileSize);
  assert.is(linked.dataMemSize, m.dataMemSize);
});

for (const layout of LAYOUTS) {
  const where = `text 0x${layout.textVa.toString(16)}, data 0x${layout.dataVa.toString(16)}`;

  test(`symbols land in their parts (${where})`, () => {
    const linked = linkHandlerObject(obj, layout);
    const handler = symbol(linked, 'libos_handler');
    assert.is(linked.entryVa, handler.va);
    assert.is(linked.entryVa, layout.textVa); // the only function, first in .text
    assert.equal(linked.symbols.find((s) => s.name === 'libos_handler')?.type, 'func');
    for (const name of ['libos_calls', 'seen', 'bias']) {
      const s = symbol(linked, name);
      assert.ok(s.va >= layout.dataVa && s.va + BigInt(s.size) <= layout.dataVa + BigInt(linked.dataMemSize), name);
    }
    const names = symbol(linked, 'names');
    assert.ok(names.va > handler.va && names.va + BigInt(names.size) <= layout.textVa + BigInt(linked.text.length));
    assert.is(linked.usesVectorRegisters, false);
  });

  test(`decoded RIP-relative operands reach the symbols' new addresses (${where})`, () => {
    const linked = linkHandlerObject(obj, layout);
    const handler = symbol(linked, 'libos_handler');
    const code = linked.text.subarray(0, handler.size);
    const refs = decodeRefs(code, layout.textVa);
    const rip = refs.filter((r) => r.ripTarget !== undefined);
    const targets = rip.map((r) => r.ripTarget as bigint);
    const calls = symbol(linked, 'libos_calls');
    const seen = symbol(linked, 'seen');
    const bias = symbol(linked, 'bias');
    const names = symbol(linked, 'names');
    // The GOT load of libos_calls became a lea of its address.
    const callsRef = rip.find((r) => r.ripTarget === calls.va);
    assert.ok(callsRef, 'an instruction refers to libos_calls');
    assert.match(callsRef?.text ?? '', /^lea /);
    for (const want of [seen, bias, names]) assert.ok(targets.includes(want.va), `a reference to 0x${want.va.toString(16)}`);
    // Nothing points anywhere but at a symbol, except the switch's jump table (.rodata, no symbol).
    const inside = (t: bigint): boolean =>
      linked.symbols.some((s) => t >= s.va && t < s.va + BigInt(Math.max(1, s.size)));
    const unnamed = rip.filter((r) => !inside(r.ripTarget as bigint));
    assert.is(unnamed.length, 1, unnamed.map((r) => r.text).join('; '));
    // The jump table's entries are .rodata -> .text PC32 relocations (target minus table): the
    // five cases 1000..1004 must land on instruction starts of the handler.
    const table = unnamed[0]?.ripTarget as bigint;
    const tableOffset = Number(table - layout.textVa);
    assert.ok(tableOffset >= handler.size && tableOffset < names.va - layout.textVa, 'the table lies in .rodata');
    const view = new DataView(linked.text.buffer, linked.text.byteOffset + tableOffset);
    const starts = instructionStarts(code, layout.textVa);
    for (let i = 0; i < 5; i++) {
      const target = table + BigInt(view.getInt32(i * 4, true));
      assert.ok(starts.has(target), `jump table entry ${i} -> 0x${target.toString(16)}`);
    }
    // Branches stay inside the function.
    for (const r of refs.filter((x) => x.branchTarget !== undefined)) {
      const t = r.branchTarget as bigint;
      assert.ok(t >= handler.va && t < handler.va + BigInt(handler.size), r.text);
    }
  });

  test(`runs at its link addresses: forwards getpid, answers getppid with 4242, counts calls (${where})`, () => {
    const linked = linkHandlerObject(obj, layout);
    const out = runInHarness(linked, layout, symbol(linked, 'libos_calls').va);
    const lines = out.split('\n');
    const line = (key: string): string[] => (lines.find((l) => l.startsWith(`${key} `)) ?? '').split(' ').slice(1);
    const [pidViaHandler, pid] = line('getpid');
    assert.ok(pid !== undefined && pid !== '');
    assert.is(pidViaHandler, pid);
    assert.equal(line('getppid')[0], '4242');
    assert.equal(line('name'), ['5', 'write']);
    assert.equal(line('seen'), ['1', '1', '0']);
    assert.equal(line('bias'), ['7']);
    assert.equal(line('write'), ['10']);
    assert.ok(lines.includes('forwarded'), 'the forwarded write reached the kernel');
    // Nine calls, and the counter in memory agrees with what the handler reports.
    assert.equal(line('counter'), ['9', '9']);
  });
}

test.run();
