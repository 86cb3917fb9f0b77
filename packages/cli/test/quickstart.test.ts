import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureBuilt, root, tempDir } from './support.js';

test('the quickstart builds the example, rewrites it with glibc-rfc --entry trace, and shows the traced calls', () => {
  ensureBuilt();
  const out = tempDir('libos-quickstart-');
  const run = spawnSync('bash', [join(root, 'examples', 'quickstart.sh')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, LIBOS_QUICKSTART_DIR: out },
  });
  assert.is(run.status, 0, `${run.stdout}\n${run.stderr}`);
  // The original ran natively and printed its lines.
  assert.match(run.stdout, /^hello from a program whose syscalls a LibOS can take over$/m);
  // apply's summary.
  assert.match(run.stdout, /^patched\s+\d+ \(rel32 \d+\)$/m);
  assert.match(run.stdout, /^refused\s+0$/m);
  // The trace entry reported each intercepted call, on stderr.
  for (const call of [/^\[libos\] 1 write\(0x1, /m, /^\[libos\] 39 getpid\(/m, /^\[libos\] 228 clock_gettime\(/m, /^\[libos\] 102 getuid\(/m, /^\[libos\] 257 openat\(/m, /^\[libos\] 0 read\(0x3, /m, /^\[libos\] 231 exit_group\(0x0/m]) {
    assert.match(run.stderr, call);
  }
  // The rewritten program's own output is unchanged.
  assert.match(run.stdout, /^-- and what the program printed \(stdout\):\nhello from a program/m);
  assert.match(run.stdout, /: ok: unchanged since it was rewritten$/m);
  assert.ok(existsSync(join(out, 'hello.traced')));
});

test.run();
