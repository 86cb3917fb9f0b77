import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X86_64_SYSCALLS, syscallName, syscallNames, syscallNumber } from '../src/index.js';

/** Spot checks against arch/x86/entry/syscalls/syscall_64.tbl. */
const KNOWN: [number, string][] = [
  [0, 'read'],
  [1, 'write'],
  [13, 'rt_sigaction'],
  [15, 'rt_sigreturn'],
  [39, 'getpid'],
  [56, 'clone'],
  [57, 'fork'],
  [58, 'vfork'],
  [59, 'execve'],
  [60, 'exit'],
  [110, 'getppid'],
  [158, 'arch_prctl'],
  [231, 'exit_group'],
  [262, 'newfstatat'],
  [334, 'rseq'],
  [424, 'pidfd_send_signal'],
  [435, 'clone3'],
  [462, 'mseal'],
];

test('number <-> name, both ways', () => {
  for (const [nr, name] of KNOWN) {
    assert.is(syscallName(nr), name);
    assert.is(syscallNumber(name), nr);
  }
});

test('gaps and strangers are undefined', () => {
  assert.is(syscallName(400), undefined, '387-423 are unused on x86-64');
  assert.is(syscallName(-1), undefined);
  assert.is(syscallName(512), undefined, 'x32-only numbers are not x86-64 calls');
  assert.is(syscallNumber('socketcall'), undefined, 'an i386 call');
  assert.is(syscallNumber('getpidd'), undefined);
});

test('the table is ascending, without duplicates, from 0 to past 460', () => {
  const numbers = X86_64_SYSCALLS.map(([nr]) => nr);
  for (let i = 1; i < numbers.length; i++) assert.ok((numbers[i] ?? 0) > (numbers[i - 1] ?? 0));
  assert.is(new Set(syscallNames()).size, syscallNames().length);
  assert.is(numbers[0], 0);
  assert.ok((numbers[numbers.length - 1] ?? 0) >= 460);
  // 0-336 and 424 onwards are contiguous.
  assert.is(numbers.filter((nr) => nr <= 336).length, 337);
});

test.run();
