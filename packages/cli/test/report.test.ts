// In-process tests of the pieces the spawned tests cannot reach: a TTY progress bar, colour rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createProgress } from '../src/progress.js';
import { formatCounts, formatTable, hex, reasonWithoutRule, toJson, usePaint } from '../src/report.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (s: string) => chunks.push(s) };
}

test('progress: drawn on a TTY once the delay has passed, erased when done', () => {
  const tty = sink(true);
  const bar = createProgress(tty, true, { delayMs: 0 });
  bar.stage('planning 12 sites', 0.5);
  bar.done();
  assert.is(tty.chunks[0], `\r\x1b[2K[${'#'.repeat(12)}${'-'.repeat(12)}] 50% planning 12 sites`);
  assert.is(tty.chunks.at(-1), '\r\x1b[2K');
});

test('progress: nothing before the delay, nothing off a TTY, nothing when disabled', () => {
  const quick = sink(true);
  const bar = createProgress(quick, true, { delayMs: 60_000 });
  bar.stage('reading', 0);
  bar.done();
  assert.equal(quick.chunks, []);
  const pipe = sink(false);
  const piped = createProgress(pipe, true, { delayMs: 0 });
  piped.stage('reading', 0);
  piped.done();
  assert.equal(pipe.chunks, []);
  const off = sink(true);
  createProgress(off, false, { delayMs: 0 }).stage('x', 1);
  assert.equal(off.chunks, []);
});

test('colour: only on a TTY, and never with NO_COLOR set', () => {
  assert.is(usePaint({ isTTY: true }, {}).red('x'), '\x1b[31mx\x1b[39m');
  assert.is(usePaint({ isTTY: true }, { NO_COLOR: '1' }).red('x'), 'x');
  assert.is(usePaint({ isTTY: false }, {}).red('x'), 'x');
});

test('tables align columns and leave the last unpadded', () => {
  assert.is(formatTable(['A', 'BB'], [['xxx', 'y'], ['z', 'long text']]), 'A    BB\nxxx  y\nz    long text\n');
});

test('JSON: bigints as hex strings, bytes as hex', () => {
  assert.is(toJson({ va: 0x401000n, bytes: new Uint8Array([0x0f, 0x05]) }), '{\n  "va": "0x401000",\n  "bytes": "0f05"\n}\n');
  assert.is(hex(255), '0xff');
  assert.is(hex(-4n), '-0x4');
});

test('counts and reasons', () => {
  assert.is(formatCounts({ rel32: 10, displace: 2, trap: 0 }), 'rel32 10, displace 2');
  assert.is(formatCounts({}), '-');
  assert.is(reasonWithoutRule('match[0]: x; rel32: fits', 'match[0]: x'), 'rel32: fits');
  assert.is(reasonWithoutRule('other', 'match[0]: x'), 'other');
});

test('formatTable: 300,000 rows print, columns as wide as their widest cell (a spread of one argument per row overflowed the stack)', () => {
  const rows = Array.from({ length: 300000 }, (_, i) => [`0x${i.toString(16)}`, i === 123456 ? 'a-wide-cell' : 'x', 'last']);
  const lines = formatTable(['ADDRESS', 'NAME', 'REASON'], rows).trimEnd().split('\n');
  assert.is(lines.length, 300001);
  assert.is(lines[0], 'ADDRESS  NAME         REASON');
  assert.is(lines[1], '0x0      x            last');
});

test.run();
