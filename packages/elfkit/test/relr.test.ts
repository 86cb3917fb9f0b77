// RELR decoding reads a bitmap word's bits as numbers; it must give what the plain bigint
// decoding of the gABI rule gives (the oracle below), relocation for relocation and error for
// error, on libc.so.6 and on random tables.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { skipPart } from '../../../fixtures/prerequisites.js';
import { ElfError, PT_LOAD, readElf, SHT_RELR } from '../src/index.js';
import type { Section, Segment } from '../src/model/types.js';
import { AddressMap } from '../src/read/address-map.js';
import { Cursor } from '../src/read/cursor.js';
import { readRelocations } from '../src/read/read-relocations.js';

type Outcome = string[] | string;

/** The gABI rule, word by word in bigints: even = address, odd = bitmap of the next 63 words. */
function oracle(bytes: Uint8Array, s: Section, map: AddressMap): Outcome {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  let base = -1n;
  let last = -1n;
  let left = Math.floor(bytes.length / 8);
  const emit = (va: bigint, at: number): string | undefined => {
    if (va <= last) return `@${at} does not increase`;
    if (left-- <= 0) return `@${at} too many`;
    last = va;
    const off = map.vaToOffset(va);
    if (off === undefined || off + 8 > bytes.length) return `@${at} not backed`;
    out.push(`${va.toString(16)}=${view.getBigInt64(off, true).toString(16)}`);
    return undefined;
  };
  for (let i = 0; i < Math.floor(s.size / 8); i++) {
    const at = s.offset + i * 8;
    const word = view.getBigUint64(at, true);
    if ((word & 1n) === 0n) {
      const e = emit(word, at);
      if (e !== undefined) return e;
      base = word + 8n;
    } else {
      if (base < 0n) return `@${at} bitmap first`;
      for (let bits = word >> 1n, va = base; bits !== 0n; bits >>= 1n, va += 8n) {
        if ((bits & 1n) !== 0n) {
          const e = emit(va, at);
          if (e !== undefined) return e;
        }
      }
      base += 63n * 8n;
    }
  }
  return out;
}

function decoded(bytes: Uint8Array, s: Section, map: AddressMap): Outcome {
  try {
    return readRelocations(new Cursor(bytes), [s], map).map((r) => `${r.offset.toString(16)}=${r.addend.toString(16)}`);
  } catch (e) {
    if (!(e instanceof ElfError)) throw e;
    const kind = /does not increase/.test(e.message) ? 'does not increase' : /more words/.test(e.message) ? 'too many'
      : /not backed/.test(e.message) ? 'not backed' : /bitmap before/.test(e.message) ? 'bitmap first' : e.message;
    return `@${e.offset} ${kind}`;
  }
}

test('libc.so.6: every RELR relocation as the bigint rule gives it', () => {
  const elf = readElf(readFileSync('/lib/x86_64-linux-gnu/libc.so.6'));
  const s = elf.sections.find((x) => x.type === SHT_RELR);
  if (s === undefined) {
    skipPart('RELR relocations of libc.so.6', 'this libc.so.6 is linked without packed relocations');
    return;
  }
  const map = new AddressMap(elf.segments, elf.sections);
  const mine = decoded(elf.bytes, s, map);
  assert.ok(Array.isArray(mine) && mine.length > 100);
  assert.equal(mine, oracle(elf.bytes, s, map));
});

test('random RELR tables: the same relocations, or the same error at the same word', () => {
  let seed = 0x2e1f;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const size = 0x4000;
  const segment: Segment = { index: 0, type: PT_LOAD, flags: 6, offset: 0, va: 0x10000n, pa: 0x10000n, filesz: size, memsz: size, align: 0x1000, headerOffset: 64 };
  const map = new AddressMap([segment], []);
  let errors = 0;
  let many = 0;
  for (let n = 0; n < 400; n++) {
    const bytes = new Uint8Array(size);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < size; i += 4) view.setUint32(i, Math.floor(random() * 2 ** 32), true);
    const words = 1 + Math.floor(random() * 24);
    const tableAt = size - words * 8;
    let va = 0x10000n + BigInt(Math.floor(random() * 64) * 8);
    for (let i = 0; i < words; i++) {
      const at = tableAt + i * 8;
      const r = random();
      if (i === 0 || r < 0.3) {
        // An address entry: usually increasing, sometimes not, sometimes outside the segment.
        va += BigInt(Math.floor(random() * 600) * 8) - (r < 0.03 ? 4096n : 0n);
        view.setBigUint64(at, r < 0.02 ? 0x7ff00000n : va, true);
      } else {
        // A bitmap: random bits, the top one included, or all of them.
        const bits = r > 0.95 ? (1n << 64n) - 1n : (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
        view.setBigUint64(at, bits | 1n, true);
      }
    }
    const s: Section = { index: 1, name: '.relr.dyn', type: SHT_RELR, flags: 2n, va: 0x10000n + BigInt(tableAt), offset: tableAt, size: words * 8, link: 0, info: 0, align: 8, entsize: 8, headerOffset: 0 };
    const want = oracle(bytes, s, map);
    assert.equal(decoded(bytes, s, map), want, `case ${n}`);
    if (typeof want === 'string') errors++;
    else if (want.length > 100) many++;
  }
  assert.ok(errors > 40 && many > 40, `${errors} errors, ${many} long tables`);
});

test.run();
