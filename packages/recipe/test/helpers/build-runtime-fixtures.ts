/**
 * Builds the run-test fixtures (fixtures/runtime/*.c, *.S) with gcc, once per source change.
 *
 * Like fixtures/build.ts: the outputs go to a cache directory under os.tmpdir() named by a hash of
 * the sources, the shared include directory, this file and gcc's version; a build is made in a
 * private directory and renamed into place, so a reader never sees half a build and concurrent
 * test processes share one.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const srcDir = join(root, 'fixtures', 'runtime');
const includeDir = join(root, 'fixtures', 'include');
const handlerIncludeDir = join(root, 'packages', 'recipe', 'include');

/** Paths of the built run-test programs. */
export interface RuntimeFixtures {
  readonly dir: string;
  /** abi.c + abi-asm.S as a PIE (pcrel table), a non-PIE (quad table) and a static binary (quad). */
  readonly abi: string;
  readonly abiNonPie: string;
  /** abi.c built -DABI_PID_CALLS_ONLY with entry-table.S's hook-only entries, non-PIE. */
  readonly abiTable: string;
  readonly abiStatic: string;
  /** abi as a static-pie (pcrel table). */
  readonly abiStaticPie: string;
  /** threads.c, PIE, -pthread; and static (quad table), where glibc's own clone3 is in the file. */
  readonly threads: string;
  readonly threadsStatic: string;
  /** sigalrm.c + abi-asm.S, PIE. */
  readonly sigalrm: string;
  /** process.c + process-asm.S, PIE and non-PIE. */
  readonly process: string;
  readonly processNonPie: string;
  /** process.c + process-asm.S, static (quad table). */
  readonly processStatic: string;
  /** entry.c + entry-asm.S + abi-asm.S, PIE, non-PIE and static (quad table). */
  readonly entry: string;
  readonly entryNonPie: string;
  readonly entryStatic: string;
  /** handler-vector.c and handler-avx.c as handler objects, built with the vector registers allowed. */
  readonly handlerVector: string;
  readonly handlerAvx: string;
}

interface Step {
  out: keyof Omit<RuntimeFixtures, 'dir'>;
  args: string[];
}

/** The file a step writes: its name, with `.o` for the handler objects (the planner reads those as objects). */
function fileOf(out: Step['out']): string {
  return out.startsWith('handler') ? `${out}.o` : out;
}

function steps(): Step[] {
  const cc = ['-O2', '-g', '-I', includeDir];
  const pie = [...cc, '-DLIBOS_ANNOTATION_PCREL', '-fPIE', '-pie'];
  const nonPie = [...cc, '-no-pie'];
  const handler = ['-O2', '-fPIC', '-ffreestanding', '-fno-stack-protector', '-fno-builtin', '-nostdlib', '-I', handlerIncludeDir];
  const src = (...files: string[]) => files.map((f) => join(srcDir, f));
  return [
    { out: 'abi', args: [...pie, ...src('abi.c', 'abi-asm.S')] },
    { out: 'abiNonPie', args: [...nonPie, ...src('abi.c', 'abi-asm.S')] },
    { out: 'abiTable', args: [...nonPie, '-DABI_PID_CALLS_ONLY', ...src('abi.c', 'abi-asm.S', 'entry-table.S')] },
    { out: 'abiStatic', args: [...cc, '-static', ...src('abi.c', 'abi-asm.S')] },
    { out: 'abiStaticPie', args: [...cc, '-DLIBOS_ANNOTATION_PCREL', '-fPIE', '-static-pie', ...src('abi.c', 'abi-asm.S')] },
    { out: 'threads', args: [...pie, '-pthread', ...src('threads.c')] },
    { out: 'threadsStatic', args: [...cc, '-static', '-pthread', ...src('threads.c')] },
    { out: 'sigalrm', args: [...pie, ...src('sigalrm.c', 'abi-asm.S')] },
    { out: 'process', args: [...pie, ...src('process.c', 'process-asm.S')] },
    { out: 'processNonPie', args: [...nonPie, ...src('process.c', 'process-asm.S')] },
    { out: 'processStatic', args: [...cc, '-static', ...src('process.c', 'process-asm.S')] },
    { out: 'entry', args: [...pie, ...src('entry.c', 'entry-asm.S', 'abi-asm.S')] },
    { out: 'entryNonPie', args: [...nonPie, ...src('entry.c', 'entry-asm.S', 'abi-asm.S')] },
    { out: 'entryStatic', args: [...cc, '-static', ...src('entry.c', 'entry-asm.S', 'abi-asm.S')] },
    // libos-patch's own handler flags (docs/handlers.md) but for -mgeneral-regs-only.
    { out: 'handlerVector', args: [...handler, '-c', ...src('handler-vector.c')] },
    { out: 'handlerAvx', args: [...handler, '-mavx2', '-c', ...src('handler-avx.c')] },
  ];
}

function sourceHash(): string {
  const h = createHash('sha256');
  for (const dir of [srcDir, includeDir, handlerIncludeDir]) {
    for (const f of readdirSync(dir).sort()) {
      h.update(`${f}\0`);
      h.update(readFileSync(join(dir, f)));
    }
  }
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  return h.digest('hex').slice(0, 16);
}

let pending: Promise<RuntimeFixtures> | undefined;

/** Builds (or finds in the cache) every run-test program and returns their paths. */
export function buildRuntimeFixtures(): Promise<RuntimeFixtures> {
  return (pending ??= build());
}

async function build(): Promise<RuntimeFixtures> {
  const { stdout: version } = await run('gcc', ['-dumpfullversion']);
  const key = createHash('sha256').update(sourceHash()).update(version).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `libos-runtime-fixtures-${key}`);
  const done = join(dir, 'built.json');
  if (!existsSync(done)) {
    const temp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await mkdir(temp, { recursive: true });
    try {
      const queue = steps();
      const worker = async (): Promise<void> => {
        for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
          try {
            await run('gcc', [...s.args, '-o', join(temp, fileOf(s.out))]);
          } catch (e) {
            throw new Error(`runtime fixture ${s.out}: gcc failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
          }
        }
      };
      await Promise.all([worker(), worker()]);
      await writeFile(join(temp, 'built.json'), JSON.stringify(steps().map((s) => s.out)));
      try {
        await rename(temp, dir);
      } catch (e) {
        // Another process renamed its build first: use that one.
        if (!existsSync(done)) throw e;
      }
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }
  const p = (name: Step['out']): string => join(dir, fileOf(name));
  return {
    dir,
    abi: p('abi'), abiNonPie: p('abiNonPie'), abiTable: p('abiTable'), abiStatic: p('abiStatic'), abiStaticPie: p('abiStaticPie'),
    threads: p('threads'), threadsStatic: p('threadsStatic'), sigalrm: p('sigalrm'),
    process: p('process'), processNonPie: p('processNonPie'), processStatic: p('processStatic'),
    entry: p('entry'), entryNonPie: p('entryNonPie'), entryStatic: p('entryStatic'),
    handlerVector: p('handlerVector'), handlerAvx: p('handlerAvx'),
  };
}
