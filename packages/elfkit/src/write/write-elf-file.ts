import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { readElf } from '../read/read-elf.js';
import { readRegularFile } from '../read/read-regular-file.js';
import type { ElfFile } from '../model/types.js';
import type { ElfEdit } from './types.js';
import { writeElf } from './write-elf.js';
import { writeError } from './write-errors.js';

/**
 * Reads `inPath`, applies the edit and writes the result to `outPath` with {@link writeFileAtomic},
 * given the input's mode bits. The input is never opened for writing; an output path naming the
 * input is refused with ELF_SAME_FILE before anything is read. `edit` may be a function of the
 * parsed file, for callers that need planLayout first. Returns the parsed input.
 */
export async function writeElfFile(inPath: string, outPath: string, edit: ElfEdit | ((elf: ElfFile) => ElfEdit)): Promise<ElfFile> {
  const inReal = await realpath(inPath);
  refuseSameFile(outPath, inReal);
  // Not a device or a FIFO, which would be read without end.
  const input = readRegularFile(inReal);
  const elf = readElf(input.bytes);
  const bytes = writeElf(elf, typeof edit === 'function' ? edit(elf) : edit);
  await writeFileAtomic(outPath, bytes, { mode: input.mode });
  return elf;
}

/**
 * Writes `data` to `outPath` so that a reader never sees half a file: into a temporary file in
 * the output's own directory (a rename across file systems is not atomic), fsynced, given exactly
 * `mode` (default 0o644; the umask does not apply), renamed over `outPath`, and the directory
 * fsynced. `inputPath`, when given, is a file that must not be replaced: an output naming it is
 * refused with ELF_SAME_FILE. Any other failure is the file system's error (ENOENT, EACCES...),
 * with the temporary file removed. {@link writeFileAtomicSync} does the same without yielding.
 */
export async function writeFileAtomic(outPath: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  if (options.inputPath !== undefined) refuseSameFile(outPath, options.inputPath);
  const { dir, temp } = tempPathFor(outPath);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(data);
      await handle.chmod(options.mode ?? 0o644);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, outPath);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  await syncDirectory(dir);
}

/**
 * {@link writeFileAtomic}, blocking: for a command-line tool, which has nothing else to do while it
 * writes, and saves the round trips through the thread pool (2 ms of a 2 MB output here).
 */
export function writeFileAtomicSync(outPath: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  if (options.inputPath !== undefined) refuseSameFile(outPath, options.inputPath);
  const { dir, temp } = tempPathFor(outPath);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      writeFileSync(fd, data);
      fchmodSync(fd, options.mode ?? 0o644);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, outPath);
  } catch (e) {
    try {
      unlinkSync(temp);
    } catch {
      // Already gone, or never made.
    }
    throw e;
  }
  syncDirectorySync(dir);
}

/** How {@link writeFileAtomic} and {@link writeFileAtomicSync} write. */
export interface AtomicWriteOptions {
  mode?: number;
  inputPath?: string;
}

/** The output's folder and a temporary name in it no other writer picks. */
function tempPathFor(outPath: string): { dir: string; temp: string } {
  const dir = dirname(resolve(outPath));
  return { dir, temp: join(dir, `.${basename(outPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`) };
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** ELF_SAME_FILE when `outPath` names `inputPath` (through links too; an output not there yet names nothing). */
function refuseSameFile(outPath: string, inputPath: string): void {
  if (realpathOr(inputPath) === realpathOr(outPath)) throw writeError('ELF_SAME_FILE', -1, `output ${outPath} is the input file`);
}

// The rename is durable only once the directory entry is on disk. Some file systems refuse to
// fsync a directory; the file itself is already synced, so that is not an error.
function syncDirectorySync(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch {
    // Refused: as above.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r').catch(() => undefined);
  if (dir === undefined) return;
  try {
    await dir.sync().catch(() => undefined);
  } finally {
    await dir.close();
  }
}
