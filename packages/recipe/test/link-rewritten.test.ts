// End to end: a C handler compiled and linked by the handler linker, bound as the `handler` entry
// of a real rewrite, runs inside the rewritten program (fixtures/runtime entry.c: PIE and non-PIE).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry } from '@libos/recipe';
import { buildRuntimeFixtures } from './helpers/build-runtime-fixtures.js';
import { rewriteWith, runProgram } from './helpers/run-rewritten.js';
import { writeSource } from './link-helpers.js';

const THROUGH_LIBOS = 'entry: hello\nentry: getppid is 4242\nentry: getpid ok\nentry: abi ok\nentry: bye\n';

const HANDLER = String.raw`
#include <libos-handler.h>
#include <sys/syscall.h>

long libos_calls;               /* global: reached through a relaxed GOT load */
static long seen[512];          /* .bss */
static long answer = 4242;      /* .data */
static const char note[] = "handler: getppid at call ";   /* .rodata */

/* Writes note, then n in decimal and a newline, to stderr: proves .rodata, .data and .bss work. */
static void report(long n)
{
    char buf[64];
    long len = 0;
    for (; note[len] != 0; len++) buf[len] = note[len];
    char digits[24];
    long d = 0;
    do { digits[d++] = (char)('0' + n % 10); n /= 10; } while (n > 0);
    while (d > 0) buf[len++] = digits[--d];
    buf[len++] = '\n';
    libos_syscall3(SYS_write, 2, (long)buf, len);
}

long libos_handler(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    long calls = __atomic_add_fetch(&libos_calls, 1, __ATOMIC_RELAXED);
    if (nr >= 0 && nr < 512) seen[nr]++;
    if (nr == SYS_getppid) {
        if (seen[SYS_getppid] == 1) report(calls);   /* the first one only: the ABI probes call it too */
        return answer;
    }
    return libos_syscall6(nr, a1, a2, a3, a4, a5, a6);
}
`;

for (const bin of ['entry', 'entryNonPie'] as const) {
  test(`${bin} x glibc-rfc with a C handler entry: runs, getppid answered by the handler, ABI probes hold`, async () => {
    const fx = await buildRuntimeFixtures();
    const entry: Entry = { kind: 'handler', source: writeSource(HANDLER) };
    const rw = await rewriteWith(fx[bin], 'glibc-rfc', entry);
    assert.ok(rw.plan.patches.length > 0, `patched (refused: ${rw.plan.refused.map((x) => x.reason).join('; ')})`);
    const r = runProgram(rw.path);
    assert.is(r.signal, null, `killed by ${r.signal}; stderr ${r.stderr.slice(0, 400)}`);
    assert.is(r.stdout, THROUGH_LIBOS);
    // The handler saw the program's calls before getppid, and answered getppid once.
    const m = /^handler: getppid at call (\d+)\n$/.exec(r.stderr);
    assert.ok(m, `stderr: ${r.stderr.slice(0, 400)}`);
    assert.ok(Number(m?.[1]) >= 2, 'hello was written through the handler first');
  });
}

test.run();
