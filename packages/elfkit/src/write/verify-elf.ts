import { chunkMatches, findPlanRecord, type PlanRecord } from './plan-record.js';
import type { ChangedRange, VerifyReport } from './types.js';
import { writeError } from './write-errors.js';

/**
 * Reports every byte range of a rewritten file that changed since {@link writeElf} wrote it,
 * at the granularity of the record's chunks (4 KiB; larger in a large file): each chunk's SHA-256 (computed with the plan's digest area zeroed) is
 * compared with the one stored in .libos.plan. A file that grew or shrank reports its tail.
 *
 * Throws ElfError ELF_NO_PLAN when the file holds no .libos.plan, ELF_BAD_PLAN when the record
 * is too damaged to read.
 */
export function verifyElf(bytes: Uint8Array): VerifyReport {
  const plan = requirePlan(bytes);
  return { ...compareDigests(bytes, plan), metadata: Uint8Array.from(plan.metadata) };
}

/** The plan of a rewritten file, or ELF_NO_PLAN. */
export function requirePlan(bytes: Uint8Array): PlanRecord {
  const plan = findPlanRecord(bytes);
  if (plan === undefined) throw writeError('ELF_NO_PLAN', -1, 'the file holds no .libos.plan: it was not written by writeElf');
  return plan;
}

/** The changed ranges of `bytes` against the digests stored in `plan`. */
export function compareDigests(bytes: Uint8Array, plan: PlanRecord): { ok: boolean; changed: ChangedRange[] } {
  const common = Math.min(bytes.length, plan.outputLength);
  const changed: ChangedRange[] = [];
  const mark = (offset: number, length: number): void => {
    const last = changed[changed.length - 1];
    if (last !== undefined && last.offset + last.length === offset) {
      changed[changed.length - 1] = { offset: last.offset, length: last.length + length };
    } else {
      changed.push({ offset, length });
    }
  };
  chunkMatches(bytes, plan, common).forEach((matches, i) => {
    const start = i * plan.chunkSize;
    // The last chunk of a truncated file is shorter than it was: it changed whatever it holds.
    const shortened = start + plan.chunkSize > common && common < plan.outputLength;
    if (shortened || !matches) mark(start, Math.min(plan.chunkSize, common - start));
  });
  if (bytes.length !== plan.outputLength) mark(common, Math.abs(bytes.length - plan.outputLength));
  return { ok: changed.length === 0, changed };
}
