import { findPlanRecord } from './plan-record.js';

/**
 * The caller's metadata stored by writeElf in .libos.plan, or undefined when the file holds no
 * plan (it was not rewritten). Throws ElfError ELF_BAD_PLAN when the plan is unreadable.
 */
export function readLibosPlan(bytes: Uint8Array): Uint8Array | undefined {
  const plan = findPlanRecord(bytes);
  return plan === undefined ? undefined : Uint8Array.from(plan.metadata);
}
