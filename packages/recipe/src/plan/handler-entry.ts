/**
 * The `handler` entry: a user's C function compiled (or given as an object) and linked into the
 * added segments. Linking itself lives in ../link; this adapts it to the planner's layout loop.
 */
import { readFileSync } from 'node:fs';
import type { Entry } from '../model.js';
import { compileHandler } from '../link/compile-handler.js';
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
    const obj = /\.(o|obj)$/.test(file)
      ? new Uint8Array(readFileSync(file))
      : await compileHandler(file, options.cc !== undefined ? { cc: options.cc } : {});
    const linkOptions = { absoluteOk, file };
    const measure = measureHandlerObject(obj, linkOptions);
    // Link once at a dummy layout to learn whether it touches vector state.
    const probe = linkHandlerObject(obj, { textVa: 0x10000000n, dataVa: 0x20000000n }, linkOptions);
    return {
      textSize: measure.textSize,
      dataMemSize: measure.dataMemSize,
      usesVectorRegisters: probe.usesVectorRegisters,
      ...(probe.vectorUse !== undefined ? { vectorUse: `${probe.vectorUse.instruction} at +0x${(probe.vectorUse.va - 0x10000000n).toString(16)}` } : {}),
      link(textVa, dataVa) {
        const linked = linkHandlerObject(obj, { textVa, dataVa }, linkOptions);
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
    if (e instanceof LinkError) throw new PlanError('PLAN_HANDLER', e.message);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PlanError('PLAN_HANDLER', `${file}: no such file`);
    throw e;
  }
}
