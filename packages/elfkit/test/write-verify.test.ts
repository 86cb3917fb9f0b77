// verifyElf, revertElf and readLibosPlan on rewritten fixtures: exact chunk-granular reports of
// changed bytes, refusal to "revert" a file changed since it was written, and files without a
// plan.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFixtures, type Fixtures } from '../../../fixtures/build.js';
import { ElfError, readElf, readLibosPlan, revertElf, verifyElf, writeElf } from '../src/index.js';
import { chunkSizeFor, findPlanRecord } from '../src/write/plan-record.js';
import { jumpEdit, load } from './write-support.js';

const test = suite('verifyElf / revertElf / readLibosPlan');
const CHUNK = 4096;
let fx: Fixtures;

test.before(async () => {
  fx = await buildFixtures();
});

function code(f: () => unknown): { code: string; offset: number } {
  try {
    f();
  } catch (e) {
    assert.instance(e, ElfError);
    return { code: (e as ElfError).code, offset: (e as ElfError).offset };
  }
  throw new Error('expected an ElfError');
}

/** The chunk range verifyElf must report for a change at `offset` in a file of `length` bytes. */
function chunkOf(offset: number, length: number): { offset: number; length: number } {
  const start = Math.floor(offset / CHUNK) * CHUNK;
  return { offset: start, length: Math.min(CHUNK, length - start) };
}

function rewritten(name: 'pie' | 'static' | 'shared'): { input: Buffer; out: Uint8Array; patchOffset: number; textOffset: number } {
  const { input, elf } = load(fx[name]);
  const j = jumpEdit(elf, { metadata: Uint8Array.of(1, 2, 3, 0, 255) });
  const out = writeElf(elf, j.edit);
  const text = readElf(out).section('.libos.text')!;
  return { input, out, patchOffset: j.edit.patches[0]!.offset, textOffset: text.offset };
}

for (const name of ['pie', 'static', 'shared'] as const) {
  test(`${name}: a byte flipped in a site patch and one in the trampolines are reported by offset`, () => {
    const { out, patchOffset, textOffset } = rewritten(name);
    assert.ok(Math.floor(patchOffset / CHUNK) !== Math.floor(textOffset / CHUNK), 'the two changes fall in different chunks');
    const damaged = Uint8Array.from(out);
    damaged[patchOffset + 1]! ^= 0x40;
    damaged[textOffset + 3]! ^= 0x01;
    const report = verifyElf(damaged);
    assert.is(report.ok, false);
    assert.equal(report.changed, [chunkOf(patchOffset + 1, out.length), chunkOf(textOffset + 3, out.length)]);
    assert.equal([...report.metadata], [1, 2, 3, 0, 255]);
    // Flipping the bytes back makes the file whole again.
    damaged[patchOffset + 1]! ^= 0x40;
    damaged[textOffset + 3]! ^= 0x01;
    assert.is(verifyElf(damaged).ok, true);
  });
}

test('every single-byte change anywhere is caught, in its own chunk (sampled across the file)', () => {
  const { out } = rewritten('pie');
  for (let offset = 0; offset < out.length; offset += 997) {
    const damaged = Uint8Array.from(out);
    damaged[offset]! ^= 0x80;
    const report = verifyElf(damaged);
    // A change in the digest area shows as the chunk whose digest it spoils; elsewhere, exactly
    // the chunk that holds the byte.
    assert.is(report.changed.length, 1, `offset 0x${offset.toString(16)}`);
    assert.ok(report.changed[0]!.length <= CHUNK);
  }
});

test('a changed e_shoff is still reported: the plan is found without the section headers', () => {
  const { out } = rewritten('static');
  const damaged = Uint8Array.from(out);
  damaged[41]! ^= 0x10;
  assert.equal(verifyElf(damaged).changed, [chunkOf(41, out.length)]);
});

test('a truncated or extended file reports its tail', () => {
  const { out } = rewritten('pie');
  const short = out.subarray(0, out.length - 3);
  const shortReport = verifyElf(short);
  assert.is(shortReport.ok, false);
  // The partial last chunk and the missing bytes, merged into one range.
  const start = Math.floor(short.length / CHUNK) * CHUNK;
  assert.equal(shortReport.changed, [{ offset: start, length: out.length - start }]);
  const long = new Uint8Array(out.length + 5);
  long.set(out);
  assert.equal(verifyElf(long).changed, [{ offset: out.length, length: 5 }]);
});

test('revertElf refuses a file changed since it was written (ELF_MODIFIED at the change), unless forced', () => {
  const { input, out, patchOffset } = rewritten('static');
  const inPatch = Uint8Array.from(out);
  inPatch[patchOffset + 2]! ^= 1;
  assert.equal(code(() => revertElf(inPatch)), { code: 'ELF_MODIFIED', offset: chunkOf(patchOffset + 2, out.length).offset });
  // Forced: the patch range comes back from the plan, so the change there is undone.
  assert.ok(Buffer.from(revertElf(inPatch, { force: true })).equals(input));
  // A change elsewhere in the original range survives a forced revert, and nowhere else.
  const elsewhere = Uint8Array.from(out);
  const at = 0x200;
  elsewhere[at]! ^= 1;
  const forced = revertElf(elsewhere, { force: true });
  assert.is(forced.length, input.length);
  const diff = [...forced].flatMap((b, i) => (b !== input[i] ? [i] : []));
  assert.equal(diff, [at]);
});

test('readLibosPlan gives the metadata back, or undefined for a file that was not rewritten', () => {
  const { input, out } = rewritten('shared');
  assert.equal([...readLibosPlan(out)!], [1, 2, 3, 0, 255]);
  assert.is(readLibosPlan(input), undefined);
  const { elf } = load(fx.pie);
  const withoutMetadata = writeElf(elf, jumpEdit(elf).edit);
  assert.is(readLibosPlan(withoutMetadata)!.length, 0);
});

test('files without a plan: verifyElf and revertElf say ELF_NO_PLAN; a rewritten file is not rewritten again', () => {
  const { input, out } = rewritten('pie');
  assert.is(code(() => verifyElf(input)).code, 'ELF_NO_PLAN');
  assert.is(code(() => revertElf(input)).code, 'ELF_NO_PLAN');
  const again = readElf(out);
  assert.is(code(() => writeElf(again, jumpEdit(readElf(input)).edit)).code, 'ELF_ALREADY_REWRITTEN');
});

test('a file that merely holds a rewritten file (objcopy --add-section) is not taken for one', () => {
  const { input, out } = rewritten('pie');
  const dir = mkdtempSync(join(tmpdir(), 'libos-embed-'));
  try {
    writeFileSync(join(dir, 'inner'), out);
    writeFileSync(join(dir, 'outer'), input);
    execFileSync('objcopy', ['--add-section', `.blob=${join(dir, 'inner')}`, join(dir, 'outer'), join(dir, 'holder')]);
    const holder = new Uint8Array(readFileSync(join(dir, 'holder')));
    assert.ok(Buffer.from(holder).indexOf(Buffer.from('LIBOSPLN')) >= 0, 'the inner record is in there');
    assert.is(code(() => verifyElf(holder)).code, 'ELF_NO_PLAN');
    assert.is(code(() => revertElf(holder, { force: true })).code, 'ELF_NO_PLAN');
    assert.is(readLibosPlan(holder), undefined);
    // The same outer file with its section headers gone still finds nothing of its own...
    const headless = Uint8Array.from(holder);
    headless.fill(0, 40, 48); // e_shoff
    assert.is(code(() => verifyElf(headless)).code, 'ELF_NO_PLAN');
    // ...while a rewritten file whose e_shoff is damaged still finds its own record.
    const damaged = Uint8Array.from(out);
    damaged.fill(0, 40, 48);
    assert.equal(verifyElf(damaged).changed, [chunkOf(40, out.length)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file of a thousand crafted plan records: the scan hashes it a few times, not once a record', () => {
  // Each record: version 1, no original ranges, no metadata, an output of the whole file in two
  // chunks (its two digests wrong). Scanning hashed the file once per record.
  const size = 512 * 1024;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  for (let at = 0; at + 192 <= size / 2; at += 256) {
    bytes.set(Buffer.from('LIBOSPLN', 'latin1'), at);
    view.setUint32(at + 8, 1, true);
    view.setUint32(at + 12, 64, true);
    view.setBigUint64(at + 16, 0n, true);
    view.setBigUint64(at + 24, BigInt(size), true);
    view.setUint32(at + 32, size / 2, true);
    view.setUint32(at + 36, 32, true);
    view.setUint32(at + 48, 2, true);
  }
  const stats = { hashedBytes: 0 };
  assert.is(findPlanRecord(bytes, stats), undefined);
  assert.ok(stats.hashedBytes > 0, 'the records decode and are tried');
  assert.ok(stats.hashedBytes <= 4 * size + (1 << 20), `${stats.hashedBytes} bytes hashed`);
});

test('a damaged plan header is ELF_BAD_PLAN at the plan section offset', () => {
  const { out } = rewritten('pie');
  const plan = readElf(out).section('.libos.plan')!;
  const damaged = Uint8Array.from(out);
  damaged[plan.offset + 8] = 99; // version
  assert.equal(code(() => verifyElf(damaged)), { code: 'ELF_BAD_PLAN', offset: plan.offset });
  assert.equal(code(() => readLibosPlan(damaged)), { code: 'ELF_BAD_PLAN', offset: plan.offset });
});

test('damaged files give a report or an ElfError, never another exception (seeded random damage)', () => {
  const { out } = rewritten('shared');
  const plan = readElf(out).section('.libos.plan')!;
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  // Half the damage lands in the plan record and the section headers, where parsing happens.
  const hot = [plan.offset, out.length - plan.offset];
  for (let i = 0; i < 300; i++) {
    const damaged = Uint8Array.from(out.subarray(0, i % 10 === 0 ? random(out.length) : out.length));
    for (let k = 0; k < 1 + random(4); k++) {
      const at = i % 2 === 0 ? hot[0]! + random(hot[1]!) : random(damaged.length || 1);
      if (at < damaged.length) damaged[at] = random(256);
    }
    for (const f of [() => verifyElf(damaged), () => revertElf(damaged), () => readLibosPlan(damaged)]) {
      try {
        f();
      } catch (e) {
        assert.instance(e, ElfError, `damage round ${i}: ${String(e)}`);
      }
    }
  }
});

test('a file cut inside the original range has lost its plan: ELF_NO_PLAN, even forced', () => {
  const { input, out } = rewritten('pie');
  const cut = out.subarray(0, input.length - 1);
  assert.is(code(() => revertElf(cut, { force: true })).code, 'ELF_NO_PLAN');
});

test('chunks grow with the file: 4 KiB up to 16 MiB, then doubled to keep about 4096 digests', () => {
  assert.is(chunkSizeFor(2_000_000), 4096);
  assert.is(chunkSizeFor(16 * 1024 * 1024), 4096);
  assert.is(chunkSizeFor(16 * 1024 * 1024 + 1), 8192);
  assert.is(chunkSizeFor(99_000_000), 32768); // the node executable
});

test('a 24 MB file: 8 KiB chunks, a change reported in its 8 KiB chunk, revert byte-identical', () => {
  const dir = mkdtempSync(join(tmpdir(), 'libos-verify-big-'));
  try {
    // 24 MiB of initialised data: the output needs more than 4096 chunks of 4 KiB.
    writeFileSync(join(dir, 'big.c'), 'char big[24 << 20] = { 1 };\nint main(void) { return big[0] - 1; }\n');
    execFileSync('gcc', ['-O2', '-o', join(dir, 'big'), join(dir, 'big.c')]);
    const { input, elf } = load(join(dir, 'big'));
    const out = writeElf(elf, { patches: [], segments: [], metadata: Uint8Array.of(7) });
    const chunk = chunkSizeFor(out.length);
    assert.is(chunk, 8192);
    assert.is(verifyElf(out).ok, true);
    const at = 20 * 1024 * 1024 + 5000;
    const damaged = Uint8Array.from(out);
    damaged[at]! ^= 1;
    const start = Math.floor(at / chunk) * chunk;
    assert.equal(verifyElf(damaged).changed, [{ offset: start, length: chunk }]);
    assert.equal(Buffer.from(revertElf(out)).equals(input), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
