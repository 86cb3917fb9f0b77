/**
 * Compiles a C handler with the one set of flags the linker is written for. The flags are fixed
 * because the stub depends on them (docs/handlers.md says why each one is there).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRegularFile } from '@libos/elfkit';
import { handlerIncludeDir } from './handler-include-dir.js';
import { LinkError } from './link-errors.js';

// node:child_process loads net, dgram and the streams with it (~3 ms of every start of the CLI):
// it is required when a handler is first compiled, which most rewrites never do.
let childProcess: typeof import('node:child_process') | undefined;
function processes(): typeof import('node:child_process') {
  childProcess ??= createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  return childProcess;
}

/** The flags every handler is compiled with. */
export const HANDLER_CFLAGS: readonly string[] = [
  '-O2', '-fPIC', '-ffreestanding', '-fno-stack-protector', '-fno-builtin', '-mgeneral-regs-only', '-nostdlib', '-c',
];

/** How to run the compiler. */
export interface CompileOptions {
  /** The compiler command, split on spaces (`ccache gcc` works); default `$CC`, else `cc`. */
  readonly cc?: string;
  /** Extra flags after the fixed ones (`-DDEBUG`, `-I dir`); they cannot remove a fixed flag. */
  readonly cflags?: readonly string[];
  /**
   * How long the compiler may run before it is killed and the compile fails, in milliseconds.
   * Default {@link COMPILE_TIMEOUT_MS}: a handler compiles in well under a second, and a compiler
   * that waits (a FIFO #included, a wrapper asking for input) must not hang the rewrite.
   */
  readonly timeoutMs?: number;
}

/** The default of {@link CompileOptions.timeoutMs}: two minutes. */
export const COMPILE_TIMEOUT_MS = 120_000;

function commandLine(sourcePath: string, outPath: string, opts: CompileOptions): { cc: string; command: string; args: string[] } {
  const cc = (opts.cc ?? process.env['CC'] ?? '').trim() || 'cc';
  const [command = 'cc', ...ccArgs] = cc.split(/\s+/);
  return {
    cc,
    command,
    args: [...ccArgs, ...HANDLER_CFLAGS, '-I', handlerIncludeDir(), ...(opts.cflags ?? []), sourcePath, '-o', outPath],
  };
}

function timeoutOf(opts: CompileOptions): number {
  const t = opts.timeoutMs;
  return t !== undefined && Number.isFinite(t) && t > 0 ? t : COMPILE_TIMEOUT_MS;
}

/** The compiler's first error line (gcc prints `file:line:col: error: ...`), else its first line. */
function firstErrorLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.find((l) => /\berror\b/i.test(l)) ?? lines[0] ?? 'no message';
}

function compileFailure(sourcePath: string, cc: string, e: unknown, timeoutMs: number): LinkError {
  const err = e as { code?: unknown; stderr?: unknown; message?: unknown; killed?: unknown; signal?: unknown };
  if (err.code === 'ENOENT') {
    return new LinkError('LINK_COMPILE_FAILED', { file: sourcePath }, `cannot run the C compiler '${cc}' (set $CC or pass cc)`);
  }
  // execFile kills on its timeout (killed: true, SIGTERM), as it does past maxBuffer (which has a
  // code of its own); execFileSync reports ETIMEDOUT.
  if (err.code === 'ETIMEDOUT' || (err.killed === true && err.signal === 'SIGTERM' && err.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')) {
    return new LinkError('LINK_COMPILE_FAILED', { file: sourcePath }, `${cc} did not finish within ${timeoutMs / 1000} s and was stopped`);
  }
  const stderr = typeof err.stderr === 'string' ? err.stderr : Buffer.isBuffer(err.stderr) ? err.stderr.toString('utf8') : '';
  const detail = stderr !== '' ? firstErrorLine(stderr) : String(err.message ?? e);
  return new LinkError('LINK_COMPILE_FAILED', { file: sourcePath }, `${cc} failed: ${detail}`);
}

/**
 * Compiles the C (or preprocessed assembler) handler at `sourcePath` into an object, in a
 * temporary directory, and returns the object's bytes. Throws (rejects with) a {@link LinkError}
 * LINK_COMPILE_FAILED carrying the compiler's first error line.
 */
export async function compileHandler(sourcePath: string, opts: CompileOptions = {}): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), 'libos-handler-'));
  try {
    const out = join(dir, 'handler.o');
    const { cc, command, args } = commandLine(sourcePath, out, opts);
    try {
      await new Promise<void>((resolve, reject) => {
        const child = processes().execFile(command, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: timeoutOf(opts) }, (error, _stdout, stderr) => {
          if (error) reject(Object.assign(error, { stderr }));
          else resolve();
        });
        // Nothing to read: a compiler that reads its input gets an end at once, not a wait.
        child.stdin?.end();
      });
    } catch (e) {
      throw compileFailure(sourcePath, cc, e, timeoutOf(opts));
    }
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** {@link compileHandler}, blocking: for command-line tools that have nothing else to do meanwhile. */
export function compileHandlerSync(sourcePath: string, opts: CompileOptions = {}): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'libos-handler-'));
  try {
    const out = join(dir, 'handler.o');
    const { cc, command, args } = commandLine(sourcePath, out, opts);
    try {
      processes().execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 * 1024 * 1024, timeout: timeoutOf(opts) });
    } catch (e) {
      throw compileFailure(sourcePath, cc, e, timeoutOf(opts));
    }
    return new Uint8Array(readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

/**
 * The handler object for a path the user gave: the file itself when it is already an ELF object
 * (compiled as docs/handlers.md says), else the result of compiling it with {@link compileHandler}.
 */
export async function loadHandler(path: string, opts: CompileOptions = {}): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    // Not a device or a FIFO, which would be read without end (or wait for a writer forever).
    const read = readRegularFile(path).bytes;
    bytes = new Uint8Array(read.buffer, read.byteOffset, read.byteLength);
  } catch (e) {
    throw new LinkError('LINK_COMPILE_FAILED', { file: path }, `cannot read the handler: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (ELF_MAGIC.every((b, i) => bytes[i] === b)) return bytes;
  return compileHandler(path, opts);
}
