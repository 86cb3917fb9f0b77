// analyzeFunction must answer as a decoder over just the function does: no byte past a function's
// end may change its analysis (a decoder shared over more of the file would see them). The
// reference: the same function in a copy of the file cut right after it, where none exists.
// analyzeFunction decodes a subarray of exactly the function today, so the first test is a guard
// for a change that would give it a shared window; the second holds r11's window to the same rule.
import { readFileSync, realpathSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readElf, type FunctionRange } from '@libos/elfkit';
import { analyzeFunction, r11LiveAfter } from '@libos/recipe';
import { releaseSharedDecoders } from '../src/analyze/iced.js';

/**
 * Every `step`-th function of each file, whole and with its range ending 1, 2 or 3 bytes early
 * (inside its last instruction, mostly), skipping ranges shorter than `minSize` bytes.
 */
function forEachCutRange(paths: string[], step: number, minSize: bigint, visit: (elf: ReturnType<typeof readElf>, range: FunctionRange, path: string, shorten: bigint) => void): void {
  for (const path of paths) {
    const elf = readElf(readFileSync(realpathSync(path)));
    const fns = elf.functions();
    for (let i = 0; i < fns.length; i += step) {
      for (const shorten of [0n, 1n, 2n, 3n]) {
        const range: FunctionRange = { ...fns[i]!, end: fns[i]!.end - shorten };
        if (range.end - range.start >= minSize) visit(elf, range, path, shorten);
      }
    }
  }
}

function plain(a: ReturnType<typeof analyzeFunction>) {
  return { count: a.count, starts: [...a.starts], lengths: [...a.lengths], kinds: [...a.kinds], targets: [...a.branchTargets], indirect: a.hasIndirectJump, firstInvalid: a.firstInvalid, error: a.error?.code };
}

test('analyzeFunction: the same as over the function alone, for whole functions and ranges cut inside an instruction', () => {
  let compared = 0;
  let cut = 0;
  forEachCutRange(['/lib/x86_64-linux-gnu/libc.so.6', '/bin/busybox', '/lib64/ld-linux-x86-64.so.2'], 7, 1n, (elf, range, path, shorten) => {
    const fileOffset = elf.vaToOffset(range.start);
    if (fileOffset === undefined) return;
    const end = fileOffset + Number(range.end - range.start);
    const alone = { bytes: elf.bytes.subarray(0, end), vaToOffset: (va: bigint) => elf.vaToOffset(va) };
    const got = plain(analyzeFunction(elf, range));
    releaseSharedDecoders(); // the reference must not share the full file's window
    const want = plain(analyzeFunction(alone, range));
    releaseSharedDecoders();
    assert.equal(got, want, `${path} ${range.start.toString(16)}-${range.end.toString(16)}`);
    compared++;
    if (shorten > 0n && got.firstInvalid >= 0) cut++;
  });
  assert.ok(compared > 2000 && cut > 100, `${compared} ranges, ${cut} ending in undecodable bytes`);
});

test('r11LiveAfter with the analysis answers as without it where a range ends inside an instruction', () => {
  // With the analysis, known boundaries are decoded through a window of the file, which sees the
  // bytes past a function's end; the instruction the end cuts must still read as undecodable.
  let compared = 0;
  let cutShort = 0;
  forEachCutRange(['/lib/x86_64-linux-gnu/libc.so.6', '/bin/busybox'], 5, 4n, (elf, range, path) => {
    const analysis = analyzeFunction(elf, range);
    if (analysis.error !== undefined) return;
    // From the function's start and from its last instruction, the one the cut may split.
    for (const va of [range.start, range.start + BigInt(analysis.starts[analysis.count - 1]!)]) {
      const plain = r11LiveAfter(elf, va, { function: range, maxInstructions: 200 });
      releaseSharedDecoders();
      assert.equal(r11LiveAfter(elf, va, { function: range, maxInstructions: 200, analysis }), plain, `${path} ${range.start.toString(16)}-${range.end.toString(16)} from ${va.toString(16)}`);
      releaseSharedDecoders();
      compared++;
      if (/undecodable/.test(plain.reason)) cutShort++;
    }
  });
  assert.ok(compared > 2000 && cutShort > 50, `${compared} walks, ${cutShort} ending in undecodable bytes`);
});

test.run();
