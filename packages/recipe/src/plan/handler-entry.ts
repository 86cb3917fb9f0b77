/**
 * The `handler` entry: a user's C function compiled (or given as an object) and linked into the
 * added segments. Linking itself lives in ../link; this adapts it to the planner's layout loop.
 */
import type { Entry } from '../model.js';
import type { PlanSymbol } from './plan-types.js';
import { PlanError } from './plan-errors.js';

export interface LinkedForPlan {
  text: Uint8Array;
  data: Uint8Array;
  dataMemSize: number;
  entryVa: bigint;
  symbols: PlanSymbol[];
}

export interface ResolvedHandler {
  textSize: number;
  dataMemSize: number;
  usesVectorRegisters: boolean;
  link(textVa: bigint, dataVa: bigint): LinkedForPlan;
}

export async function resolveHandler(entry: Extract<Entry, { kind: 'handler' }>, options: { cc?: string }, absoluteOk: boolean): Promise<ResolvedHandler> {
  void entry; void options; void absoluteOk;
  throw new PlanError('PLAN_HANDLER', 'C handlers are not linked yet');
}
