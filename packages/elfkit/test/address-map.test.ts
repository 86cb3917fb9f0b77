// AddressMap remembers the segment of its last answer (lookups come in runs, RELR's words one by
// one); the answers must stay those of a scan in program-header order, also where a crafted file's
// segments overlap.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PT_LOAD } from '../src/index.js';
import { AddressMap } from '../src/read/address-map.js';
import type { Segment } from '../src/model/types.js';

function load(index: number, va: bigint, offset: number, filesz: number): Segment {
  return { index, type: PT_LOAD, flags: 4, offset, va, pa: va, filesz, memsz: filesz, align: 0x1000, headerOffset: 64 + index * 56 };
}

/** The answer of a plain scan, first segment first. */
function scan(segments: Segment[], va: bigint): number | undefined {
  for (const s of segments) if (va >= s.va && va < s.va + BigInt(s.filesz)) return s.offset + Number(va - s.va);
  return undefined;
}

test('vaToOffset: the answers of a first-match scan, in any order of lookups, disjoint or overlapping', () => {
  const layouts: Segment[][] = [
    [load(0, 0x400000n, 0, 0x1000), load(1, 0x401000n, 0x1000, 0x2000), load(2, 0x600000n, 0x3000, 0x800)],
    // Overlapping: 0x401800 lies in both; the first (offset 0x1800) must win even right after a
    // lookup the second answered.
    [load(0, 0x400000n, 0, 0x2000), load(1, 0x401000n, 0x5000, 0x2000)],
    [load(0, 0x401000n, 0x5000, 0x2000), load(1, 0x400000n, 0, 0x2000)],
    // Disjoint but listed out of order; and overlapping only between the first and the last.
    [load(0, 0x600000n, 0x3000, 0x800), load(1, 0x400000n, 0, 0x1000), load(2, 0x401000n, 0x1000, 0x2000)],
    [load(0, 0x400000n, 0, 0x1800), load(1, 0x600000n, 0x3000, 0x800), load(2, 0x401000n, 0x1000, 0x2000)],
  ];
  const probes = [0x3fffffn, 0x400000n, 0x400fffn, 0x401000n, 0x401800n, 0x402fffn, 0x403000n, 0x600000n, 0x6007ffn, 0x600800n, 0x402800n, 0x401800n];
  for (const segments of layouts) {
    const map = new AddressMap(segments, []);
    for (let round = 0; round < 3; round++) {
      for (const va of round === 1 ? [...probes].reverse() : probes) {
        assert.is(map.vaToOffset(va), scan(segments, va), `0x${va.toString(16)}`);
      }
    }
  }
  const overlapping = new AddressMap(layouts[1]!, []);
  assert.is(overlapping.vaToOffset(0x402800n), 0x6800, 'only the second holds it');
  assert.is(overlapping.vaToOffset(0x401800n), 0x1800, 'both hold it: the first answers');
});

test.run();
