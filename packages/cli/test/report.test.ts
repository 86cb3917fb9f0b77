// The table printer: a table of 300,000 rows prints (Math.max over a spread of its rows overflowed
// the stack at about 125,000 sites).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatTable } from '../src/report.js';

test('formatTable: 300,000 rows print, columns as wide as their widest cell', () => {
  const rows = Array.from({ length: 300000 }, (_, i) => [`0x${i.toString(16)}`, i === 123456 ? 'a-wide-cell' : 'x', 'last']);
  const text = formatTable(['ADDRESS', 'NAME', 'REASON'], rows);
  const lines = text.trimEnd().split('\n');
  assert.is(lines.length, 300001);
  assert.is(lines[0], 'ADDRESS  NAME         REASON');
  assert.is(lines[1], '0x0      x            last');
});

test.run();
