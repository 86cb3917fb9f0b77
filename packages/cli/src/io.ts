import { realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isElfError, readRegularFile, writeFileAtomicSync } from '@libos/elfkit';
import { CliError } from './errors.js';

/** An input file's bytes and the permission bits the output inherits. */
export interface InputFile {
  path: string;
  bytes: Uint8Array;
  mode: number;
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a component of the path is not a directory';
    case 'EROFS': return 'read-only file system';
    case 'ENOSPC': return 'no space left on device';
    default: return err.message ?? String(e);
  }
}

/** Read an input file whole. Fails with CLI_INPUT_UNREADABLE (exit 2). */
export function readInput(path: string): InputFile {
  try {
    // Not a device or a pipe (/dev/zero would be read until memory ran out).
    const read = readRegularFile(path);
    // A view of the Buffer read, not a copy of it (a 100 MB input is read once).
    const bytes = new Uint8Array(read.bytes.buffer, read.bytes.byteOffset, read.bytes.byteLength);
    return { path, bytes, mode: read.mode };
  } catch (e) {
    throw new CliError('CLI_INPUT_UNREADABLE', `cannot read the input: ${reason(e)}`, { file: path, cause: e });
  }
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
}

/**
 * Fail early, before any work, when `path` clearly cannot be written: its folder is missing or not
 * a folder, the path is a folder, or it names the input. The write itself may still fail later
 * (permissions, space) and reports the same way.
 */
export function checkOutput(path: string, input?: string): void {
  if (input !== undefined && samePath(path, input)) {
    throw new CliError('CLI_OUTPUT_UNWRITABLE', 'the output would replace the input; write it elsewhere', { file: path });
  }
  const fail = (code: string) => {
    throw new CliError('CLI_OUTPUT_UNWRITABLE', `cannot write the output: ${reason({ code })}`, { file: path });
  };
  let folder;
  try {
    folder = statSync(dirname(resolve(path)));
  } catch (e) {
    fail((e as NodeJS.ErrnoException).code ?? 'ENOENT');
  }
  if (folder !== undefined && !folder.isDirectory()) fail('ENOTDIR');
  try {
    if (statSync(path).isDirectory()) fail('EISDIR');
  } catch (e) {
    if (e instanceof CliError) throw e;
    // No file there yet: the usual case.
  }
}

/**
 * Write `bytes` to `path` with elfkit's atomic writer (a temporary file in the output's folder,
 * fsynced, renamed over `path`), so that a reader never sees half a file. `mode` keeps the input's
 * executable bit (0o644 without it). The output may not be the input: the input is never touched.
 * Fails with CLI_OUTPUT_UNWRITABLE (exit 2).
 */
export async function writeOutput(path: string, bytes: Uint8Array | string, options: { mode?: number; input?: string } = {}): Promise<void> {
  try {
    // Blocking: the command has nothing else to do meanwhile, and each await of the async writer
    // is a round trip through the thread pool.
    writeFileAtomicSync(path, bytes, { mode: options.mode, inputPath: options.input });
  } catch (e) {
    if (isElfError(e, 'ELF_SAME_FILE')) {
      throw new CliError('CLI_OUTPUT_UNWRITABLE', 'the output would replace the input; write it elsewhere', { file: path });
    }
    throw new CliError('CLI_OUTPUT_UNWRITABLE', `cannot write the output: ${reason(e)}`, { file: path, cause: e });
  }
}
