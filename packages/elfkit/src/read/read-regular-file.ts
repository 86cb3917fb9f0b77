import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/** The error for a path that names a device, a FIFO or a socket: code ENOTREG. */
export const NOT_REGULAR = 'not a regular file (a device, a pipe or a socket)';

/**
 * Reads a regular file whole, refusing anything else before reading a byte: a device would be
 * read without end (/dev/zero until memory ran out) and a FIFO would wait for a writer forever.
 * The check is made on the open file (no window between it and the read), and the open does
 * not wait on a FIFO. Fails with the file system's error (ENOENT, EACCES...), EISDIR for a
 * directory, or an Error with code ENOTREG and message {@link NOT_REGULAR}. Returns the Buffer
 * read (not a copy) and the file's permission bits.
 */
export function readRegularFile(path: string): { bytes: Buffer; mode: number } {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const info = fstatSync(fd);
    if (info.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${path}'`), { code: 'EISDIR' });
    if (!info.isFile()) throw Object.assign(new Error(NOT_REGULAR), { code: 'ENOTREG' });
    return { bytes: readFileSync(fd), mode: info.mode & 0o7777 };
  } finally {
    closeSync(fd);
  }
}
