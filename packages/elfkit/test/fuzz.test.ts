// Seeded fuzzing: real ELF files with headers and tables mutated, truncated and set to extremes.
// Every failure must be an ElfError (never a RangeError/TypeError, never a hang) with every lazy
// table, functions() and syscallAnnotations() touched.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ElfError, readElf, SHT_NOBITS, type ElfFile } from '../src/index.js';
import { missingRelr, skipPart } from '../../../fixtures/prerequisites.js';
import { buildFixtures } from '../../../fixtures/build.js';

const SEED = 0x5eed2026;
const CASES = 6000;

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Base {
  name: string;
  bytes: Uint8Array;
  /** Byte ranges worth mutating: ELF header, program headers, section headers, each section's bytes. */
  regions: { name: string; start: number; end: number }[];
}

function regionsOf(name: string, bytes: Uint8Array): Base {
  const elf = readElf(bytes);
  const h = elf.header;
  const regions = [{ name: 'ehdr', start: 0, end: 64 }];
  if (h.phnum > 0) regions.push({ name: 'phdrs', start: h.phoff, end: h.phoff + h.phnum * 56 });
  if (h.shnum > 0) regions.push({ name: 'shdrs', start: h.shoff, end: h.shoff + h.shnum * 64 });
  for (const s of elf.sections) {
    if (s.type !== SHT_NOBITS && s.size > 0) regions.push({ name: s.name, start: s.offset, end: s.offset + s.size });
  }
  return { name, bytes, regions };
}

/** Reads everything the reader can be asked for. */
function touchAll(elf: ElfFile): void {
  void elf.header;
  void elf.kind;
  void elf.sections.length;
  void elf.segments.length;
  void elf.symbols.length;
  void elf.dynamicSymbols.length;
  void elf.dynamic.length;
  void elf.relocations.length;
  void elf.notes.length;
  void elf.buildId;
  void elf.functions().length;
  for (const a of elf.syscallAnnotations()) {
    try {
      elf.readVa(a.site, a.length);
    } catch (e) {
      if (!(e instanceof ElfError) || e.code !== 'ELF_VA_UNMAPPED') throw e;
    }
  }
  elf.vaToOffset(elf.header.entry);
  elf.offsetToVa(elf.header.phoff);
  void elf.section('.text');
}

const EXTREMES = [0n, 1n, 0x7fn, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x7fffffffffffffffn, 0xffffffffffffffffn];

/**
 * Mutates `base.bytes` in place and returns the bytes to parse (a view: truncation is a shorter
 * subarray) and an undo function, so that even large bases cost no copy per case.
 */
function mutate(rand: () => number, base: Base): { bytes: Uint8Array; undo: () => void } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const bytes = base.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const saved: [number, Uint8Array][] = [];
  const save = (at: number, len: number): void => {
    saved.push([at, bytes.slice(at, at + len)]);
  };
  let length = bytes.length;
  const rounds = 1 + Math.floor(rand() * 3);
  for (let r = 0; r < rounds; r++) {
    const region = pick(base.regions);
    const span = region.end - region.start;
    const kind = rand();
    if (kind < 0.45) {
      // Flip a few bytes.
      const n = 1 + Math.floor(rand() * 6);
      for (let i = 0; i < n; i++) {
        const at = region.start + Math.floor(rand() * span);
        save(at, 1);
        bytes[at] = bytes[at]! ^ (1 << Math.floor(rand() * 8));
      }
    } else if (kind < 0.85) {
      // Set an aligned field to an extreme, or to a value near the file size.
      const width = rand() < 0.5 ? 4 : 8;
      const at = region.start + Math.floor((rand() * span) / width) * width;
      if (at + width > bytes.length) continue;
      const near = BigInt(bytes.length) + BigInt(Math.floor(rand() * 64) - 32);
      const v = rand() < 0.7 ? pick(EXTREMES) : near < 0n ? 0n : near;
      save(at, width);
      if (width === 4) view.setUint32(at, Number(v & 0xffffffffn), true);
      else view.setBigUint64(at, v, true);
    } else if (kind < 0.93) {
      // Truncate, often inside a table.
      length = rand() < 0.5 ? region.start + Math.floor(rand() * span) : Math.floor(rand() * bytes.length);
      break;
    } else {
      // Fill a run with one byte value (zeros or 0xff).
      const start = region.start + Math.floor(rand() * span);
      const len = Math.min(bytes.length - start, 1 + Math.floor(rand() * 64));
      save(start, len);
      bytes.fill(rand() < 0.5 ? 0 : 0xff, start, start + len);
    }
  }
  const undo = (): void => {
    for (let i = saved.length - 1; i >= 0; i--) bytes.set(saved[i]![1], saved[i]![0]);
  };
  return { bytes: bytes.subarray(0, length), undo };
}

const test = suite('fuzz');

test(`${CASES} seeded mutations of real ELF files: only ElfErrors, no hangs`, async () => {
  const f = await buildFixtures();
  const noRelr = await missingRelr();
  if (noRelr !== undefined) skipPart('fuzzing the relr fixture (the pie stands in for it)', noRelr);
  // Small fixtures most of the time; the static ones and ld.so (hundreds of KB) less often.
  const paths: [string, string, number][] = [
    ['pie', f.pie, 3], ['nonPie', f.nonPie, 2], ['relr', f.relr ?? f.pie, 2], ['object', f.object, 3],
    ['objectPcrel', f.objectPcrel, 2], ['shared', f.shared, 2], ['sharedMain', f.sharedMain, 1], ['stripped', f.stripped, 2],
    ['pcrelPie', f.pcrelPie, 2], ['ld.so', '/lib64/ld-linux-x86-64.so.2', 1], ['static', f.static, 1], ['staticPie', f.staticPie, 1],
  ];
  const bases: Base[] = [];
  for (const [n, p, weight] of paths) {
    const base = regionsOf(n, new Uint8Array(readFileSync(p)));
    for (let k = 0; k < weight; k++) bases.push(base);
  }
  const pristine = new Map(bases.map((b) => [b.name, b.bytes.slice()]));
  const rand = prng(SEED);
  const outcomes = new Map<string, number>();
  let slowest = 0;
  const started = performance.now();
  for (let i = 0; i < CASES; i++) {
    const base = bases[i % bases.length]!;
    const { bytes, undo } = mutate(rand, base);
    const t0 = performance.now();
    let outcome = 'ok';
    try {
      touchAll(readElf(bytes));
    } catch (e) {
      if (!(e instanceof ElfError)) {
        assert.unreachable(`case ${i} (${base.name}, ${bytes.length} bytes): ${(e as Error).stack ?? String(e)}`);
      }
      const err = e as ElfError;
      assert.ok(Number.isSafeInteger(err.offset) && err.offset >= -1, `case ${i}: offset ${err.offset}`);
      assert.ok(err.offset === -1 || err.offset <= Math.max(bytes.length, base.bytes.length) + 64, `case ${i}: offset ${err.offset} is a file position`);
      outcome = err.code;
    }
    slowest = Math.max(slowest, performance.now() - t0);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    undo();
  }
  for (const b of bases) assert.ok(Buffer.from(b.bytes).equals(pristine.get(b.name)!), `${b.name} restored after every case`);
  const elapsed = performance.now() - started;
  const summary = [...outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`  fuzz: ${CASES} cases in ${elapsed.toFixed(0)} ms, slowest ${slowest.toFixed(1)} ms; ${summary}`);
  // The run reaches deep tables: many cases parse fully, and failures span many codes.
  assert.ok((outcomes.get('ok') ?? 0) > CASES / 10, 'a good share of mutated files still parse fully');
  assert.ok(outcomes.size >= 10, `failures span many codes: ${summary}`);
  assert.ok(slowest < 2000, `no case takes long (slowest ${slowest.toFixed(1)} ms)`);
});

test.run();
