/**
 * The `handler` entry: a user's C function compiled (or given as an object) and linked into the
 * added segments. Linking itself lives in ../link; this adapts it to the planner's layout loop.
 */
import type { Entry } from '../model.js';
import { loadHandler } from '../link/compile-handler.js';
import { linkHandlerObject, measureHandlerObject } from '../link/link-handler.js';
import { LinkError } from '../link/link-errors.js';
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
  vectorUse?: string;
  link(textVa: bigint, dataVa: bigint): LinkedForPlan;
}

export async function resolveHandler(entry: Extract<Entry, { kind: 'handler' }>, options: { cc?: string }, absoluteOk: boolean): Promise<ResolvedHandler> {
  const file = entry.source;
  try {
    // An ELF object is taken as it is; anything else is compiled with the handler flags.
    const obj = await loadHandler(file, options.cc !== undefined ? { cc: options.cc } : {});
    const linkOptions = { absoluteOk, file };
    const measure = measureHandlerObject(obj, linkOptions);
    return {
      textSize: measure.textSize,
      dataMemSize: measure.dataMemSize,
      usesVectorRegisters: measure.usesVectorRegisters,
      ...(measure.vectorUse !== undefined ? { vectorUse: `${measure.vectorUse.instruction} at +0x${measure.vectorUse.offset.toString(16)}` } : {}),
      link(textVa, dataVa) {
        // A refusal here is the handler's, as one from measuring it is.
        let linked;
        try {
          linked = linkHandlerObject(obj, { textVa, dataVa }, linkOptions);
        } catch (e) {
          throw asPlanError(e);
        }
        return {
          text: linked.text,
          data: linked.data,
          dataMemSize: linked.dataMemSize,
          entryVa: linked.entryVa,
          symbols: linked.symbols.map((s) => ({ name: s.name, va: s.va, size: s.size, type: s.type })),
        };
      },
    };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PlanError('PLAN_HANDLER', `${file}: no such file`);
    throw asPlanError(e);
  }
}

/** A LinkError, from measuring or from linking, is the plan's PLAN_HANDLER; anything else as it is. */
function asPlanError(e: unknown): unknown {
  return e instanceof LinkError ? new PlanError('PLAN_HANDLER', e.message) : e;
}
