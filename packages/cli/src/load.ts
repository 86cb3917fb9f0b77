import type { ElfFile } from '@libos/elfkit';
import { readElf } from '@libos/elfkit';
import { loadRecipe, type Recipe } from '@libos/recipe';
import { CliError } from './errors.js';
import { readInput, type InputFile } from './io.js';
import { toCliError } from './map-error.js';

/** An input file read and parsed as ELF. */
export interface LoadedElf extends InputFile {
  elf: ElfFile;
}

/** Read `path` and parse it as ELF; every failure names the file (exit 2). */
export function loadElf(path: string): LoadedElf {
  const input = readInput(path);
  try {
    return { ...input, elf: readElf(input.bytes) };
  } catch (e) {
    throw toCliError(e, path);
  }
}

/**
 * Load a recipe by built-in name or path. The first error becomes a CLI_BAD_RECIPE at its
 * `file:line:col`; warnings go to `warn`.
 */
export function loadRecipeOrFail(nameOrPath: string, warn: (text: string) => void): Recipe {
  const result = loadRecipe(nameOrPath);
  for (const w of result.warnings) warn(w.toString());
  const first = result.errors[0];
  if (first !== undefined || result.recipe === undefined) {
    const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more)` : '';
    throw new CliError('CLI_BAD_RECIPE', `${first?.message ?? 'the recipe did not load'}${more}`, {
      file: first?.file ?? nameOrPath,
      line: first?.line,
      col: first?.col,
      engineCode: first?.code,
    });
  }
  return result.recipe;
}
