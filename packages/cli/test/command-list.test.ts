import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { COMMANDS } from '../src/command-list.js';
import { parseEntry, formatEntry } from '../src/args.js';
import { main } from '../src/bin.js';
import { tempDir } from './support.js';

test('the command list agrees with each command\'s own name and summary', async () => {
  for (const entry of COMMANDS) {
    const command = await entry.load();
    assert.is(command.name, entry.name);
    assert.is(command.summary, entry.summary, entry.name);
  }
});

test('--entry forms parse and print back', () => {
  const table: [string, string][] = [
    ['passthrough', 'passthrough'],
    ['trace', 'trace'],
    ['symbol:my_libos_entry', 'symbol:my_libos_entry'],
    ['address:0x401000', 'address:0x401000'],
    ['address:DEADBEEF', 'address:0xdeadbeef'],
    ['handler:h.c', 'handler:/work/h.c'],
  ];
  for (const [text, printed] of table) assert.is(formatEntry(parseEntry(text, '/work')), printed, text);
});

test('main() called by a program (no marks from the bin): --timings gives the time before the command as one figure', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: { write: (s: string) => out.push(s) }, err: { write: (s: string) => err.push(s) }, env: {}, cwd: process.cwd() };
  const status = await main(['apply', '/bin/true', '-r', 'unannotated', '-o', join(tempDir(), 'true.out'), '--timings'], io);
  assert.is(status, 0, err.join(''));
  assert.match(err.join(''), /^libos-patch: timings: before the command \(Node's start and loading the CLI\) \d+ ms, reading \d+ ms, /m);
  // With the bin's marks, the split figures.
  err.length = 0;
  await main(['apply', '/bin/true', '-r', 'unannotated', '-o', join(tempDir(), 'true2.out'), '--timings'], io, { binStart: 1, cliLoaded: 2 });
  assert.match(err.join(''), /^libos-patch: timings: Node's start 1 ms, loading the CLI 1 ms, loading the command \d+ ms, reading \d+ ms, /m);
});

test.run();
