/**
 * The system's dynamic loader (ld-linux-x86-64.so.2, /bin/ls's PT_INTERP) rewritten with the
 * built-in recipe `unannotated`: its raw system calls (it has no libc to call) are all displaced,
 * and the rewritten loader, run as a program (`ld.so PROGRAM`, the same code the kernel starts for
 * PT_INTERP), starts programs that print exactly what they print under the system's loader, with
 * `passthrough`, with `trace` and with a C handler that overwrites every caller-saved register
 * after each call (fixtures/runtime/handler-clobber.c).
 *
 * With `trace`, `ld.so --list /bin/ls` (the loader maps the libraries, prints them and exits: no
 * code but its own runs) shows every call strace sees the system's loader make for the same
 * command, name by name, and no other.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PT_INTERP, readElf } from '@libos/elfkit';
import { countByName, freshDir, rewriteWith, traceLines, type Rewritten } from './helpers/run-rewritten.js';

const CLOBBER_HANDLER = resolve(fileURLToPath(new URL('../../../fixtures/runtime/handler-clobber.c', import.meta.url)));
const SH_SCRIPT = 'i=0; while [ $i -lt 5 ]; do echo "n=$i $((i * i))"; i=$((i + 1)); done | while read a b; do echo "$b $a"; done; echo end';

/** The loader /bin/ls names in PT_INTERP, links resolved. */
function systemLoader(): string {
  const elf = readElf(readFileSync('/bin/ls'));
  const interp = elf.segments.find((p) => p.type === PT_INTERP);
  if (interp === undefined) throw new Error('/bin/ls has no PT_INTERP');
  const path = Buffer.from(elf.bytes.subarray(interp.offset, interp.offset + interp.filesz)).toString('latin1').replace(/\0[\s\S]*$/, '');
  return realpathSync(path);
}

type Kind = 'passthrough' | 'trace' | 'handler';

let cached: Promise<{ loader: string; rewritten: Record<Kind, Rewritten> }> | undefined;

function fixture(): Promise<{ loader: string; rewritten: Record<Kind, Rewritten> }> {
  cached ??= (async () => {
    const loader = systemLoader();
    const rewritten = {} as Record<Kind, Rewritten>;
    for (const kind of ['passthrough', 'trace', 'handler'] as const) {
      const entry = kind === 'handler' ? { kind, source: CLOBBER_HANDLER } : { kind };
      rewritten[kind] = await rewriteWith(loader, 'unannotated', entry, freshDir(`ldso-${kind}`));
    }
    return { loader, rewritten };
  })();
  return cached;
}

interface Run { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function run(argv: string[]): Run {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), LC_ALL: 'C' };
  delete env.LD_LIBRARY_PATH;
  delete env.LD_PRELOAD;
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env, timeout: 60_000 });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `ld.so --list` prints load addresses, which ASLR changes from run to run, and the loader's own
 * path, which is the rewritten copy's for the rewritten loader.
 */
const comparable = (text: string, self: string, loader: string): string => text.replaceAll(self, loader).replace(/\(0x[0-9a-f]+\)/g, '(ADDR)');

const PROGRAMS: { name: string; args: string[] }[] = [
  { name: 'sh -c (a loop and a pipe)', args: ['/bin/sh', '-c', SH_SCRIPT] },
  { name: 'ls -l /bin/ls', args: ['/bin/ls', '-l', '/bin/ls'] },
  { name: '--list /bin/ls', args: ['--list', '/bin/ls'] },
];

test('ld.so: every raw system call of the loader is displaced, none refused', async () => {
  const { loader, rewritten } = await fixture();
  for (const [kind, rw] of Object.entries(rewritten)) {
    const { plan } = rw;
    assert.ok(rw.sites.length >= 20, `${loader} makes its own system calls (found ${rw.sites.length})`);
    assert.is(plan.refused.length, 0, `${kind}: refused ${plan.refused.map((r) => `0x${r.va.toString(16)}: ${r.reason}`).join('; ')}`);
    assert.is(plan.stats.patched, rw.sites.length, `${kind}: every site patched`);
    assert.equal(Object.keys(plan.stats.byVariant), ['displace'], `${kind}: ${JSON.stringify(plan.stats.byVariant)}`);
  }
});

for (const kind of ['passthrough', 'trace', 'handler'] as const) {
  test(`ld.so (${kind}) runs sh, ls and --list as the system's loader does`, async () => {
    const { loader, rewritten } = await fixture();
    for (const p of PROGRAMS) {
      const reference = run([loader, ...p.args]);
      const after = run([rewritten[kind].path, ...p.args]);
      assert.is(after.signal, null, `${p.name}: killed by ${after.signal}; stderr ${after.stderr.slice(-2000)}`);
      assert.is(after.status, reference.status, `${p.name}: exit status`);
      assert.ok(reference.stdout.length > 0, `${p.name}: prints something`);
      assert.fixture(comparable(after.stdout, rewritten[kind].path, loader), comparable(reference.stdout, loader, loader), `${p.name}: stdout`);
      const stderr = kind === 'trace' ? after.stderr.split('\n').filter((l) => !l.startsWith('[libos] ')).join('\n') : after.stderr;
      assert.is(stderr, reference.stderr, `${p.name}: stderr`);
      if (kind !== 'trace') assert.not.match(after.stderr, /^\[libos\] /m, `${p.name}: ${kind} writes no trace`);
    }
  });
}

test('ld.so (trace): `--list /bin/ls` traces every call strace sees the system loader make, name by name', async () => {
  const { loader, rewritten } = await fixture();
  const traced = countByName(traceLines(run([rewritten.trace.path, '--list', '/bin/ls']).stderr).map((l) => l.name));
  const log = `${freshDir('ldso-strace')}/strace.log`;
  const st = spawnSync('strace', ['-f', '-qq', '-o', log, '--', loader, '--list', '/bin/ls'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(st.status, 0, `strace: ${st.stderr}`);
  const seen: string[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /^(?:\d+\s+)?([a-z0-9_]+)\(/.exec(line);
    // execve is the kernel starting the loader, before any of its code runs.
    if (m !== null && m[1] !== 'execve') seen.push(m[1]!);
  }
  const expected = countByName(seen);
  assert.ok((expected.openat ?? 0) > 0 && (expected.mmap ?? 0) > 0, `the loader opens and maps libraries: ${JSON.stringify(expected)}`);
  assert.equal(traced, expected);
});

test.run();
