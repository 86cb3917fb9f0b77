import type { Command } from './command.js';

/** A command as `--help` lists it; its module (and the engine behind it) loads only when it runs. */
export interface CommandEntry {
  name: string;
  /** The same line as the command's own `summary` (a test keeps them equal). */
  summary: string;
  load(): Promise<Command>;
}

// Loading the engine (iced-x86's wasm above all) costs a command ~10 ms: --version and --help
// should not pay it.
/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'sites', summary: 'list the syscall sites of a binary and the variant each would get', load: async () => (await import('./commands/sites.js')).sitesCommand },
  { name: 'plan', summary: 'print the patch plan a recipe makes for a binary (JSON)', load: async () => (await import('./commands/plan.js')).planCommand },
  { name: 'apply', summary: 'rewrite a binary\'s syscall sites with a recipe', load: async () => (await import('./commands/apply.js')).applyCommand },
  { name: 'verify', summary: 'check that a rewritten binary is unchanged since libos-patch wrote it', load: async () => (await import('./commands/verify.js')).verifyCommand },
  { name: 'revert', summary: 'rebuild the original binary, byte for byte, from a rewritten one', load: async () => (await import('./commands/revert.js')).revertCommand },
  { name: 'recipes', summary: 'list the built-in recipes', load: async () => (await import('./commands/recipes.js')).recipesCommand },
  { name: 'schema', summary: 'print the JSON Schema of recipe files', load: async () => (await import('./commands/schema.js')).schemaCommand },
];
