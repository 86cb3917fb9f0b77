/**
 * The plan as JSON, for other rewriters and loaders: addresses as "0x..." strings, bytes as hex
 * strings, keys in a fixed order, so the same plan always gives the same text.
 */
import { PlanError } from './plan-errors.js';
import { PLAN_SCHEMA, type PatchPlan } from './plan-types.js';

// Indexed and for-in loops, not map/entries: a plan has tens of thousands of values, and while V8
// still interprets this code every iterator step and entry pair is an allocation.
function toJsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') return value < 0n ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = toJsonValue(value[i]);
    return out;
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const object = value as Record<string, unknown>;
    for (const k in object) {
      if (!Object.prototype.hasOwnProperty.call(object, k)) continue;
      const v = object[k];
      if (v !== undefined) out[k] = toJsonValue(v);
    }
    return out;
  }
  return value;
}

/**
 * Deterministic JSON text of a plan, newline-terminated: 2-space indented for people, or on one
 * line (`compact`) where only a program reads it (the plan stored in a rewritten file).
 */
export function serializePlan(plan: PatchPlan, options: { compact?: boolean } = {}): string {
  return `${JSON.stringify(toJsonValue(plan), null, options.compact === true ? undefined : 2)}\n`;
}

const BIGINT_KEYS = new Set(['va', 'siteVa', 'resumeVa', 'trampolineVa', 'entryPoint', 'addend', 'originalVa']);
const BYTES_KEYS = new Set(['before', 'after', 'bytes', 'debugFrame']);

function fromJsonValue(key: string, value: unknown): unknown {
  if (typeof value === 'string' && BIGINT_KEYS.has(key) && /^-?0x[0-9a-f]+$/.test(value)) {
    return value.startsWith('-') ? -BigInt(value.slice(1)) : BigInt(value);
  }
  if (typeof value === 'string' && BYTES_KEYS.has(key) && /^([0-9a-f]{2})*$/.test(value)) return new Uint8Array(Buffer.from(value, 'hex'));
  if (Array.isArray(value)) return value.map((v) => fromJsonValue('', v));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromJsonValue(k, v);
    return out;
  }
  return value;
}

/** Reads a plan written by serializePlan; checks the schema tag. */
export function parsePlan(text: string): PatchPlan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new PlanError('PLAN_BAD_JSON', `not JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || (raw as { schema?: unknown }).schema !== PLAN_SCHEMA) {
    throw new PlanError('PLAN_BAD_JSON', `not a ${PLAN_SCHEMA} plan`);
  }
  return fromJsonValue('', raw) as PatchPlan;
}
