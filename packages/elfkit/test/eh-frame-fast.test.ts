// readEhFrame reads the usual FDE (pcrel sdata4 pc_begin, one-byte augmentation length) with
// numbers, everything else with the general reader: the answers, and the errors, must be the same
// either way, on real files and on mutated .eh_frame bytes.
import { readFileSync, realpathSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { missingFile, testNeeding } from '../../../fixtures/prerequisites.js';
import { ElfError, readElf } from '../src/index.js';
import { Cursor } from '../src/read/cursor.js';
import { EntryReader, readEhFrame, type Fde } from '../src/read/read-eh-frame.js';

type Outcome = { fdes: string[] } | { error: string };

function outcome(bytes: Uint8Array, offset: number, size: number, va: bigint, general: boolean): Outcome {
  try {
    const fdes = readEhFrame(new Cursor(bytes), offset, size, va, { general });
    return { fdes: fdes.map(describe) };
  } catch (e) {
    if (!(e instanceof ElfError)) throw e;
    return { error: `${e.code} @${e.offset}: ${e.message}` };
  }
}

function describe(f: Fde): string {
  const lsda = f.lsda === undefined ? '' : ` lsda=${typeof f.lsda === 'bigint' ? f.lsda.toString(16) : f.lsda}`;
  return `${f.offset} ${f.start.toString(16)}-${f.end.toString(16)} cie=${f.cie.offset} ins=${f.instructions}..${f.entryEnd}${f.signalFrame === true ? ' S' : ''}${lsda}`;
}

// gdb: C++, FDEs with LSDA pointers (CIEs "zPLR").
const FILES = ['/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2', '/bin/ls', '/usr/bin/gdb', process.execPath];

for (const path of FILES) {
  testNeeding(test, missingFile(path), `the fast FDE path reads ${path} as the general reader does`, () => {
    const elf = readElf(readFileSync(realpathSync(path)));
    const s = elf.section('.eh_frame')!;
    const fast = outcome(elf.bytes, s.offset, s.size, s.va, false);
    assert.ok('fdes' in fast && fast.fdes.length > 100);
    assert.equal(fast, outcome(elf.bytes, s.offset, s.size, s.va, true));
  });
}

/** The first entries of a file's .eh_frame, up to about `max` bytes, cut at an entry's end. */
function leadingEntries(path: string, max: number): { bytes: Uint8Array; va: bigint } {
  const elf = readElf(readFileSync(path));
  const s = elf.section('.eh_frame')!;
  const view = new DataView(elf.bytes.buffer, elf.bytes.byteOffset + s.offset, s.size);
  let at = 0;
  while (at + 4 <= s.size && at < max) {
    const length = view.getUint32(at, true);
    if (length === 0 || length === 0xffffffff) break;
    at += 4 + length;
  }
  // Copies (a Buffer's slice would share the file's bytes and every mutation would stay).
  return { bytes: new Uint8Array(elf.bytes.subarray(s.offset, s.offset + Math.min(at, s.size))), va: s.va };
}

for (const [path, max] of [['/lib64/ld-linux-x86-64.so.2', Infinity], ['/usr/bin/gdb', 12_000]] as const) {
  testNeeding(test, missingFile(path), `the fast FDE path agrees with the general reader on mutated .eh_frame bytes and on high addresses (${path})`, () => {
    const { bytes: original, va: sectionVa } = leadingEntries(path, max);
    const s = { va: sectionVa };
    let seed = 0x5eed;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let errors = 0;
    let changed = 0;
    for (let n = 0; n < 1500; n++) {
      const bytes = new Uint8Array(original);
      // A few bytes set to edge values: lengths, CIE pointers, pc_begin/pc_range, augmentation lengths.
      for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
        const at = Math.floor(random() * bytes.length);
        bytes[at] = [0x00, 0x7f, 0x80, 0xff, 0x1b, 0x03][Math.floor(random() * 6)]!;
      }
      // Addresses near 2^53 and 2^64 take the bigint path and must wrap the same way.
      const va = [s.va, 2n ** 53n - 0x1000n, 2n ** 64n - 0x100n, 0x10n][n % 4]!;
      const fast = outcome(bytes, 0, bytes.length, va, false);
      assert.equal(fast, outcome(bytes, 0, bytes.length, va, true), `case ${n}`);
      const intact = outcome(original, 0, original.length, va, true);
      if ('error' in fast) errors++;
      else if (JSON.stringify(fast) !== JSON.stringify(intact)) changed++;
    }
    // Both kinds of outcome are exercised, not only errors.
    assert.ok(errors > 50 && changed > 300, `${errors} errors, ${changed} changed answers`);
  });
}

test('ulebNumber reads what Number(uleb()) reads, errors included, for LEB128s of 1 to 11 bytes', () => {
  let seed = 0x1eb;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const outcome = (bytes: Uint8Array, end: number, read: (r: EntryReader) => number): string => {
    const r = new EntryReader(new Cursor(bytes), 0, end, 0);
    try {
      return `${read(r)} @${r.at}`;
    } catch (e) {
      return `${(e as Error).message}`;
    }
  };
  let long = 0;
  for (let n = 0; n < 3000; n++) {
    const length = 1 + Math.floor(random() * 11);
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = Math.floor(random() * 256) | (i < length - 1 ? 0x80 : 0);
    bytes[length - 1]! &= 0x7f;
    // Sometimes the entry ends inside the LEB128.
    const end = random() < 0.2 ? Math.floor(random() * length) : 16;
    const want = outcome(bytes, end, (r) => Number(r.uleb()));
    assert.is(outcome(bytes, end, (r) => r.ulebNumber()), want, `case ${n}`);
    if (length > 7) long++;
  }
  assert.ok(long > 500);
});

test.run();
