import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
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
    const stat = statSync(path);
    if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    const bytes = new Uint8Array(readFileSync(path));
    return { path, bytes, mode: stat.mode & 0o7777 };
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
 * Write `bytes` to `path` so that a reader never sees half a file: into a temporary file in the
 * output's own folder (a rename across file systems is not atomic), then renamed over `path`.
 * `mode` keeps the input's executable bit. The output may not be the input: the input is never
 * touched.
 */
export function writeOutput(path: string, bytes: Uint8Array | string, options: { mode?: number; input?: string } = {}): void {
  if (options.input !== undefined && samePath(path, options.input)) {
    throw new CliError('CLI_OUTPUT_UNWRITABLE', 'the output would replace the input; write it elsewhere', { file: path });
  }
  const dir = dirname(resolve(path));
  const temp = join(dir, `.${basename(path)}.libos-patch-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o600);
    // The umask would strip bits from openSync's mode; fchmod sets exactly the input's.
    fchmodSync(fd, options.mode ?? 0o644);
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try { unlinkSync(temp); } catch { /* it may never have been created */ }
    throw new CliError('CLI_OUTPUT_UNWRITABLE', `cannot write the output: ${reason(e)}`, { file: path, cause: e });
  }
}
