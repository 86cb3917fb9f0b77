/** A plan applied to its input: the ElfEdit elfkit's writer takes, and the rewritten bytes. */
import { kMaxLength } from 'node:buffer';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { readLibosPlan, writeElf, type ElfEdit, type ElfFile } from '@libos/elfkit';
import type { PatchPlan } from './plan-types.js';
import { parsePlan, serializePlan } from './serialize-plan.js';
import { checkPlan } from './check-plan.js';
import { PlanError } from './plan-errors.js';

/** The stored plan is deflated JSON behind this tag (the JSON is ~10x larger than the code it describes). */
const STORED_PLAN_TAG = 'libos-plan/deflate\n';
/** The most a stored plan inflates to (unless its deflated size says more): 256 MiB. */
const MAX_STORED_PLAN = 256 * 1024 * 1024;

function encodeStoredPlan(plan: PatchPlan): Uint8Array {
  // Segment bytes are in the file already; the stored plan keeps everything else.
  const json = serializePlan({ ...plan, segments: plan.segments.map((s) => ({ ...s, bytes: new Uint8Array(0) })), debugFrame: new Uint8Array(0) }, { compact: true });
  // Level 1: libc.so.6's plan (368 KB of JSON) compresses in 1 ms to 41 KB, against 3.7 ms and
  // 34 KB at level 6; a few KB more in a 2 MB output is worth that on every rewrite.
  const body = deflateRawSync(Buffer.from(json), { level: 1 });
  const tag = Buffer.from(STORED_PLAN_TAG);
  const out = new Uint8Array(tag.length + body.length);
  out.set(tag);
  out.set(body, tag.length);
  return out;
}

/**
 * The plan a rewritten file records, or undefined for a file libos-patch did not write.
 * `maxPlanBytes`: the most the stored plan may inflate to (default 256 MiB, or 64 times its
 * deflated size when that is more); past it, PLAN_BAD_JSON.
 */
export function readStoredPlan(bytes: Uint8Array, options: { maxPlanBytes?: number } = {}): PatchPlan | undefined {
  const stored = readLibosPlan(bytes);
  if (stored === undefined) return undefined;
  const tag = Buffer.from(STORED_PLAN_TAG);
  const head = Buffer.from(stored.buffer, stored.byteOffset, Math.min(stored.length, tag.length));
  let json: string;
  if (head.equals(tag)) {
    const body = Buffer.from(stored.buffer, stored.byteOffset + tag.length, stored.length - tag.length);
    // Plans deflate about tenfold; a crafted record could inflate to gigabytes.
    // Never past what a Buffer can hold: inflating would fail with a RangeError of its own.
    const limit = Math.min(kMaxLength, options.maxPlanBytes ?? Math.max(MAX_STORED_PLAN, 64 * body.length));
    try {
      json = inflateRawSync(body, { maxOutputLength: limit }).toString('utf8');
    } catch (e) {
      throw new PlanError('PLAN_BAD_JSON', `the stored plan does not inflate within ${limit} bytes: ${(e as Error).message}`);
    }
  } else json = Buffer.from(stored.buffer, stored.byteOffset, stored.length).toString('utf8');
  return parsePlan(json);
}

export function planToElfEdit(plan: PatchPlan, options: { debugFrame?: boolean } = {}): ElfEdit {
  const withFrames = options.debugFrame !== false && plan.debugFrame !== undefined && plan.debugFrame.length > 0;
  return {
    patches: [
      ...plan.patches.map((p) => ({ offset: p.offset, bytes: p.after })),
      ...(plan.startupPatch !== undefined ? [{ offset: plan.startupPatch.offset, bytes: plan.startupPatch.after }] : []),
    ].sort((x, y) => x.offset - y.offset),
    segments: plan.segments.map((s) => ({ name: s.name, va: s.va, flags: s.flags, bytes: s.bytes, memsz: s.memsz })),
    symbols: plan.symbols.map((s) => ({ name: s.name, va: s.va, size: s.size, type: s.type })),
    ...(plan.entryPoint !== undefined ? { entry: plan.entryPoint } : {}),
    ...(withFrames ? { debugFrame: plan.debugFrame } : {}),
    metadata: encodeStoredPlan(plan),
  };
}

/** The rewritten file: the input with the plan's patches and added segments. */
export function rewriteElf(elf: ElfFile, plan: PatchPlan): Uint8Array {
  // A plan made for another file would write its bytes over the wrong instructions.
  if (plan.input.size !== elf.bytes.length || plan.input.kind !== elf.kind) {
    throw new PlanError('PLAN_INPUT_MISMATCH', `the plan was made for a ${plan.input.kind} of ${plan.input.size} bytes, not this ${elf.kind} of ${elf.bytes.length} bytes`);
  }
  checkPlan(elf, plan);
  if (plan.relocations.length > 0) {
    const names = [...new Set(plan.relocations.map((r) => r.symbol))].join(', ');
    throw new PlanError('PLAN_UNRESOLVED', `the plan leaves ${plan.relocations.length} reference(s) to ${names} for a loader to resolve: the file does not define them, so it cannot be written as is`);
  }
  // The writer adds one .debug_frame; a file that has its own keeps it, and the added code goes
  // without unwind rows there (symbols still name it).
  return writeElf(elf, planToElfEdit(plan, { debugFrame: elf.section('.debug_frame') === undefined }));
}
