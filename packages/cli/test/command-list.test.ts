import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMANDS } from '../src/command-list.js';
import { parseEntry, formatEntry } from '../src/args.js';

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

test.run();
