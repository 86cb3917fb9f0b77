import { randomBytes } from 'node:crypto';
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
  await refuseSameFile(outPath, inReal);
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
 * with the temporary file removed.
 */
export async function writeFileAtomic(outPath: string, data: Uint8Array | string, options: { mode?: number; inputPath?: string } = {}): Promise<void> {
  if (options.inputPath !== undefined) await refuseSameFile(outPath, await realpath(options.inputPath).catch(() => resolve(options.inputPath!)));
  const dir = dirname(resolve(outPath));
  const temp = join(dir, `.${basename(outPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
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

async function refuseSameFile(outPath: string, inReal: string): Promise<void> {
  const outReal = await realpath(outPath).catch(() => resolve(outPath));
  if (inReal === outReal) throw writeError('ELF_SAME_FILE', -1, `output ${outPath} is the input file`);
}

// The rename is durable only once the directory entry is on disk. Some file systems refuse to
// fsync a directory; the file itself is already synced, so that is not an error.
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r').catch(() => undefined);
  if (dir === undefined) return;
  try {
    await dir.sync().catch(() => undefined);
  } finally {
    await dir.close();
  }
}
