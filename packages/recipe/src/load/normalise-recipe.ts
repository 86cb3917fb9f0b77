import type { Entry, MatchRule, Recipe, SyscallFilter } from '../model.js';
import type { RecipeOutput } from '../schema/recipe-schema.js';

type RawRecipe = Record<string, unknown>;
type RuleOutput = NonNullable<RecipeOutput['match']>[number];
type EntryOutput = RecipeOutput['entry'];

/** The sections whose keys a child recipe overrides one by one; every other section is replaced whole. */
const MERGED_SECTIONS = ['trampoline', 'abi'] as const;
/** What a child never inherits: it names and describes itself. */
const OWN_KEYS = ['name', 'description', 'extends'] as const;

/**
 * A child recipe over its parent, both as written (before defaults): each section the child gives
 * overrides the parent's. `trampoline` and `abi` merge key by key, so `abi: { flags: clobber }`
 * keeps the parent's red-zone policy; `match`, `native`, `entry` and `stub` are replaced whole.
 */
export function mergeRecipeLayers(parent: RawRecipe, child: RawRecipe): RawRecipe {
  const merged: RawRecipe = {};
  for (const [key, value] of Object.entries(parent)) {
    if (!(OWN_KEYS as readonly string[]).includes(key)) merged[key] = value;
  }
  for (const [key, value] of Object.entries(child)) {
    if (key === 'extends') continue;
    const inherited = merged[key];
    if ((MERGED_SECTIONS as readonly string[]).includes(key) && isPlainMap(inherited) && isPlainMap(value)) {
      merged[key] = { ...inherited, ...value };
    } else {
      merged[key] = value;
    }
  }
  return merged;
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The model form of a validated recipe: camelCase keys, the entry as a tagged union, `source` set. */
export function toRecipe(data: RecipeOutput, source: string): Recipe {
  return {
    name: data.name,
    description: data.description,
    source,
    match: (data.match ?? []).map(toMatchRule),
    trampoline: {
      prefer: [...data.trampoline.prefer],
      fallback: [...data.trampoline.fallback],
      trapInstruction: data.trampoline['trap-instruction'],
    },
    abi: {
      flags: data.abi.flags,
      redZone: data.abi['red-zone'],
      vectorState: data.abi['vector-state'],
      rcxR11: data.abi['rcx-r11'],
    },
    stub: data.stub,
    entry: toEntry(data.entry),
    native: [...data.native],
  };
}

function toMatchRule(rule: RuleOutput): MatchRule {
  const out: MatchRule = {};
  if (rule.annotation !== undefined) out.annotation = rule.annotation;
  if (rule.instruction !== undefined) out.instruction = rule.instruction;
  if (rule.padding !== undefined) out.padding = rule.padding;
  if (rule['preceded-by'] !== undefined) out.precededBy = rule['preceded-by'];
  if (rule.sections !== undefined) out.sections = copyFilter(rule.sections);
  if (rule.symbols !== undefined) out.symbols = copyFilter(rule.symbols);
  if (rule.syscalls !== undefined) out.syscalls = copyFilter(rule.syscalls) as SyscallFilter;
  return out;
}

function copyFilter<T>(filter: { include?: T[] | undefined; exclude?: T[] | undefined }): { include?: T[]; exclude?: T[] } {
  const out: { include?: T[]; exclude?: T[] } = {};
  if (filter.include !== undefined) out.include = [...filter.include];
  if (filter.exclude !== undefined) out.exclude = [...filter.exclude];
  return out;
}

function toEntry(entry: EntryOutput): Entry {
  if (entry === 'passthrough' || entry === 'trace') return { kind: entry };
  if (entry.handler !== undefined) return { kind: 'handler', source: entry.handler };
  if (entry.symbol !== undefined) return { kind: 'symbol', name: entry.symbol };
  if (entry.address !== undefined) return { kind: 'address', va: BigInt(entry.address) };
  if (entry.slot !== undefined) return { kind: 'slot', segment: entry.slot.segment, offset: entry.slot.offset };
  if (entry.pointer !== undefined) return { kind: 'pointer', symbol: entry.pointer };
  // The schema admits no other map; keep the type checker honest all the same.
  return { kind: 'passthrough' };
}
