/**
 * The recipe language as a zod schema over the YAML as written (kebab-case keys). It is the one
 * source of truth: the loader validates with it, fills defaults from it, and the shipped JSON Schema
 * (`schema/recipe.schema.json`, for editors) is generated from it. Built on first use
 * ({@link recipeSchema}): a command that loads only built-in recipes never needs it.
 */
import { ANNOTATION_SECTION_PCREL, ANNOTATION_SECTION_QUAD } from '@libos/elfkit';
import type { z } from 'zod';
import { zodModule } from '../lazy-modules.js';
import { syscallNames } from '../syscalls/x86-64.js';

/** Where an annotation rule reads its sites: the seed's table, or the relocation-free one. */
export const ANNOTATION_SECTIONS = [ANNOTATION_SECTION_QUAD, ANNOTATION_SECTION_PCREL] as const;
export const VARIANTS = ['rel32', 'rel32-site', 'abs64', 'displace', 'trap'] as const;
export const FLAGS_POLICIES = ['preserve', 'preserve-all', 'clobber', 'clobber-if-dead'] as const;
export const RED_ZONE_POLICIES = ['preserve', 'unused'] as const;
export const VECTOR_POLICIES = ['preserve', 'clobber'] as const;
export const RCX_R11_POLICIES = ['syscall', 'exact', 'clobber'] as const;
export const STUB_KINDS = ['fast', 'seed'] as const;
export const TRAP_INSTRUCTIONS = ['ud2', 'int3'] as const;
export const ENTRY_KEYWORDS = ['passthrough', 'trace'] as const;
/** The keys of an entry written as a map; exactly one of them is given. */
export const ENTRY_KINDS = ['handler', 'symbol', 'address', 'slot', 'pointer'] as const;
export const NATIVE_CALLS = ['rt_sigreturn', 'vfork', 'clone', 'clone3'] as const;

/** The value of every section that may be left out. */
export const RECIPE_DEFAULTS = {
  description: '',
  trampoline: { prefer: ['rel32', 'rel32-site'], fallback: ['abs64', 'trap'], 'trap-instruction': 'ud2' },
  abi: { flags: 'preserve', 'red-zone': 'preserve', 'vector-state': 'preserve', 'rcx-r11': 'syscall' },
  stub: 'fast',
  entry: 'passthrough',
  native: ['rt_sigreturn', 'vfork', 'clone', 'clone3'],
} as const;

const RECIPE_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** A list in which no value appears twice: the second one is reported where it stands. */
function uniqueList<T extends z.ZodType>(item: T) {
  return zodModule().z.array(item).superRefine((values, ctx) => {
    const seen = new Set<unknown>();
    values.forEach((value, index) => {
      if (seen.has(value)) ctx.addIssue({ code: 'custom', path: [index], message: `'${String(value)}' is listed twice` });
      seen.add(value);
    });
  });
}

function buildRecipeSchema() {
  const { z } = zodModule();
  const NameFilterSchema = z
    .strictObject({
      include: z.array(z.string()).optional().meta({ description: 'Glob patterns (`*`, `?`); a candidate must match one. Absent: everything.' }),
      exclude: z.array(z.string()).optional().meta({ description: 'Glob patterns; a candidate matching one is left alone.' }),
    })
    .meta({ description: 'Names to include and exclude, as globs.' });

  const SyscallRefSchema = z.union([
    z.number().int().nonnegative(),
    z.enum(syscallNames() as [string, ...string[]]),
  ]);

  const SyscallFilterSchema = z
    .strictObject({
      include: uniqueList(SyscallRefSchema).optional().meta({ description: 'System calls by x86-64 name or number; a site whose number is known must be one of them.' }),
      exclude: uniqueList(SyscallRefSchema).optional().meta({ description: 'System calls by x86-64 name or number to leave alone.' }),
    })
    .meta({ description: 'Which system calls the rule applies to, where the number is known statically.' });

  const MatchRuleSchema = z
    .strictObject({
      annotation: z.enum(ANNOTATION_SECTIONS).optional().meta({ description: 'Take the sites listed in this annotation section (the seed: .libos.instructions.syscall).' }),
      instruction: z.enum(['syscall']).optional().meta({ description: 'Take the `syscall` instructions found by decoding the function ranges.' }),
      padding: z.number().int().min(0).max(64).optional().meta({ description: 'Instruction rules only: at least this many NOP bytes right after the syscall.' }),
      'preceded-by': z.enum(['mov-eax-imm']).optional().meta({ description: 'Only sites right after `mov $nr,%eax` (confirmed by decoding); the number becomes known.' }),
      sections: NameFilterSchema.optional(),
      symbols: NameFilterSchema.optional(),
      syscalls: SyscallFilterSchema.optional(),
    })
    .superRefine((rule, ctx) => {
      if (rule.annotation !== undefined && rule.instruction !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['instruction'], message: "a rule takes its sites from either 'annotation' or 'instruction', not both" });
      } else if (rule.annotation === undefined && rule.instruction === undefined) {
        ctx.addIssue({ code: 'custom', path: [], message: "a rule needs 'annotation' or 'instruction' to say where its sites come from" });
      }
      if (rule.annotation !== undefined && rule.padding !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['padding'], message: "'padding' applies to instruction rules only (an annotation gives each site's length)" });
      }
    })
    .meta({
      description: "One site-matching rule: 'annotation' or 'instruction', narrowed by the optional filters.",
      // What the refinement above checks, said so that an editor checks it too.
      oneOf: [{ required: ['annotation'] }, { required: ['instruction'] }],
      if: { required: ['annotation'] },
      then: { not: { required: ['padding'] } },
    });

  const VariantSchema = z.enum(VARIANTS);

  const TrampolineSchema = z
    .strictObject({
      prefer: uniqueList(VariantSchema).min(1).default([...RECIPE_DEFAULTS.trampoline.prefer]).meta({ description: 'Variants to try at each site, in order.' }),
      fallback: uniqueList(VariantSchema).default([...RECIPE_DEFAULTS.trampoline.fallback]).meta({ description: 'Variants to try, in order, where no preferred one fits.' }),
      'trap-instruction': z.enum(TRAP_INSTRUCTIONS).default(RECIPE_DEFAULTS.trampoline['trap-instruction']).meta({ description: 'The instruction the trap variant writes.' }),
    })
    .prefault({})
    .meta({ description: 'How a site is turned into a jump: the variants to try.' });

  const AbiSchema = z
    .strictObject({
      flags: z.enum(FLAGS_POLICIES).default(RECIPE_DEFAULTS.abi.flags).meta({ description: 'What the stub keeps of rflags.' }),
      'red-zone': z.enum(RED_ZONE_POLICIES).default(RECIPE_DEFAULTS.abi['red-zone']).meta({ description: 'Whether the 128 bytes below rsp may hold live data at the site.' }),
      'vector-state': z.enum(VECTOR_POLICIES).default(RECIPE_DEFAULTS.abi['vector-state']).meta({ description: 'Whether xmm/ymm/zmm registers survive the call.' }),
      'rcx-r11': z.enum(RCX_R11_POLICIES).default(RECIPE_DEFAULTS.abi['rcx-r11']).meta({ description: 'syscall: rcx and r11 as after a real syscall wherever the program reads them (r11 left unset where decoding proves it is never read; around a C handler only the registers the program can read are saved); exact: set at every site, all saved; clobber: whatever the stub leaves.' }),
    })
    .prefault({})
    .meta({ description: 'What the code at a patched site may rely on afterwards.' });

  /** An address written as a YAML integer or, beyond 2^53, a quoted decimal or 0x string. */
  const AddressSchema = z.union([
    z.number().nonnegative().refine(Number.isInteger, { message: 'must be a whole number' }),
    z.string().regex(/^(0x[0-9a-fA-F]+|0o[0-7]+|[0-9]+)$/, { message: 'must be a number, decimal or 0x-hexadecimal' }),
  ]);

  const EntryMapSchema = z
    .strictObject({
      handler: z.string().min(1).optional().meta({ description: 'A C source or object file, relative to the recipe, compiled in as the handler.' }),
      symbol: z.string().min(1).optional().meta({ description: 'A function of the binary (or of the handler) to jump to.' }),
      address: AddressSchema.optional().meta({ description: 'A fixed virtual address to jump to.' }),
      slot: z
        .strictObject({
          segment: z.enum(['fs', 'gs']).meta({ description: 'The segment register holding the slot.' }),
          offset: z.number().int().min(0).max(0x7fffffff).meta({ description: 'The slot offset in bytes (a signed 32-bit displacement: at most 0x7fffffff).' }),
        })
        .optional()
        .meta({ description: 'Jump through a pointer kept at %fs:offset or %gs:offset.' }),
      pointer: z.string().min(1).optional().meta({ description: 'Jump through the pointer stored in this variable (a symbol).' }),
    })
    .superRefine((entry, ctx) => {
      const given = ENTRY_KINDS.filter((key) => entry[key] !== undefined);
      if (given.length === 0) ctx.addIssue({ code: 'custom', path: [], message: `an entry map needs one of ${ENTRY_KINDS.join(', ')}` });
      if (given.length > 1) ctx.addIssue({ code: 'custom', path: [given[1] ?? ''], message: `an entry map has exactly one key, got ${given.join(' and ')}` });
    })
    .meta({ minProperties: 1, maxProperties: 1 });

  const EntrySchema = z
    .union([z.enum(ENTRY_KEYWORDS), EntryMapSchema])
    .default(RECIPE_DEFAULTS.entry)
    .meta({ description: 'Where the stub sends each system call: passthrough, trace, or a map with one of handler, symbol, address, slot, pointer.' });

  /** A recipe file as written. `match` may only be left out when `extends` gives it. */
  return z
    .strictObject({
      name: z.string().regex(RECIPE_NAME, { message: 'must match [a-z0-9][a-z0-9-]* (lower-case letters, digits, dashes)' }).meta({ description: 'The recipe name, [a-z0-9][a-z0-9-]*.' }),
      description: z.string().default(RECIPE_DEFAULTS.description).meta({ description: 'One line on what the recipe is for.' }),
      extends: z.string().min(1).optional().meta({ description: 'A built-in recipe name or a path (relative to this file) to start from.' }),
      match: z.array(MatchRuleSchema).min(1).optional().meta({ description: 'Site-matching rules; a site is taken by the first rule that matches it.' }),
      trampoline: TrampolineSchema,
      abi: AbiSchema,
      stub: z.enum(STUB_KINDS).default(RECIPE_DEFAULTS.stub).meta({ description: 'fast: our lea + lahf/sahf stub; seed: the RFC stub, exactly as published.' }),
      entry: EntrySchema,
      native: uniqueList(z.enum(NATIVE_CALLS)).default([...RECIPE_DEFAULTS.native]).meta({ description: 'Calls made natively at the site, never through a stack-keeping stub.' }),
    })
    .meta({ title: 'libos-patch recipe', description: 'Which syscall sites of an x86-64 ELF binary to patch, and how.' });
}

/** The zod schema of a recipe file. */
export type RecipeSchemaType = ReturnType<typeof buildRecipeSchema>;

let built: RecipeSchemaType | undefined;

/** The recipe language as a zod schema, built on its first use (zod included). */
export function recipeSchema(): RecipeSchemaType {
  return (built ??= buildRecipeSchema());
}

/** A recipe as written in YAML, before defaults. */
export type RecipeInput = z.input<RecipeSchemaType>;
/** A recipe as validated, defaults filled, keys still as written. */
export type RecipeOutput = z.output<RecipeSchemaType>;
