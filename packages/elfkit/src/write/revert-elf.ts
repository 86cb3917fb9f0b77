import { compareDigests, requirePlan } from './verify-elf.js';
import { writeError } from './write-errors.js';

/** Options of {@link revertElf}. */
export interface RevertOptions {
  /**
   * Rebuild the original even if the file changed since it was rewritten. The changes inside the
   * original file range then survive into the result (outside it they are dropped).
   */
  readonly force?: boolean;
}

/**
 * Gives back the original file, byte for byte, from a file written by writeElf: its first
 * `original length` bytes with every changed range restored from .libos.plan.
 *
 * Throws ElfError ELF_NO_PLAN / ELF_BAD_PLAN for a file without a readable plan, and
 * ELF_MODIFIED (at the first changed offset) when the file changed since it was written, since
 * the result would then not be the original; pass `force` to rebuild it anyway.
 */
export function revertElf(bytes: Uint8Array, options: RevertOptions = {}): Uint8Array {
  const plan = requirePlan(bytes);
  if (bytes.length < plan.originalLength) {
    throw writeError('ELF_MODIFIED', bytes.length, `the file was cut to ${bytes.length} bytes, inside the original's ${plan.originalLength}`);
  }
  if (options.force !== true) {
    const { changed } = compareDigests(bytes, plan);
    const first = changed[0];
    if (first !== undefined) {
      throw writeError('ELF_MODIFIED', first.offset, `the file changed since it was rewritten (${changed.length} range(s), first at 0x${first.offset.toString(16)})`);
    }
  }
  const original = Uint8Array.from(bytes.subarray(0, plan.originalLength));
  for (const r of plan.ranges) original.set(r.original, r.offset);
  return original;
}
