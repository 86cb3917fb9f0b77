import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { readElf } from '../read/read-elf.js';
import type { ElfFile } from '../model/types.js';
import type { ElfEdit } from './types.js';
import { writeElf } from './write-elf.js';
import { writeError } from './write-errors.js';

/**
 * Reads `inPath`, applies the edit and writes the result to `outPath` atomically: into a
 * temporary file in the same directory (so that rename cannot cross file systems), fsynced,
 * given the input's mode bits, then renamed over `outPath`, and the directory fsynced. The input
 * is never opened for writing; an output path naming the input is refused with ELF_SAME_FILE.
 * `edit` may be a function of the parsed file, for callers that need planLayout first. Returns
 * the parsed input.
 */
export async function writeElfFile(inPath: string, outPath: string, edit: ElfEdit | ((elf: ElfFile) => ElfEdit)): Promise<ElfFile> {
  const inReal = await realpath(inPath);
  const outReal = await realpath(outPath).catch(() => resolve(outPath));
  if (inReal === outReal) throw writeError('ELF_SAME_FILE', -1, `output ${outPath} is the input file`);
  const info = await stat(inReal);
  const elf = readElf(await readFile(inReal));
  const bytes = writeElf(elf, typeof edit === 'function' ? edit(elf) : edit);
  const temp = join(dirname(resolve(outPath)), `.${basename(outPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(bytes);
      await handle.chmod(info.mode & 0o7777);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, outPath);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  await syncDirectory(dirname(resolve(outPath)));
  return elf;
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
