// Test helper: links a small assembly program with gcc (no libc) and reads it with elfkit.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ElfFile, readElf } from '@libos/elfkit';

const dir = mkdtempSync(join(tmpdir(), 'libos-discover-'));
let serial = 0;
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

export interface Assembled {
  elf: ElfFile;
  path: string;
  /** va of a symbol (function or label made global). */
  sym(name: string): bigint;
}

/**
 * Links `source` (GNU as syntax) as a static non-PIE executable without libc. Wrap functions in
 * `fn(name, body)` so they get symbols with sizes. With `libc`, gcc links it as a C program
 * would be (the source then defines `main`), with `extraArgs` after the defaults.
 */
export function assemble(source: string, extraArgs: string[] = [], options: { libc?: boolean } = {}): Assembled {
  const base = join(dir, `t${serial++}`);
  const stack = '.section .note.GNU-stack,"",@progbits\n';
  writeFileSync(`${base}.S`, options.libc === true ? `${source}\n${stack}` : `.text\n.globl _start\n_start:\n  hlt\n${source}\n`);
  const defaults = options.libc === true ? [] : ['-nostdlib', '-static', '-no-pie'];
  execFileSync('gcc', [...defaults, '-Wl,--build-id=none', ...extraArgs, '-o', base, `${base}.S`], { stdio: 'pipe' });
  const elf = readElf(readFileSync(base));
  return {
    elf,
    path: base,
    sym(name: string): bigint {
      const s = elf.symbols.find((x) => x.name === name);
      if (s === undefined) throw new Error(`no symbol ${name}`);
      return s.value;
    },
  };
}

/** A function with a symbol type and size: `.type name,@function ... .size name,.-name`. */
export function fn(name: string, body: string, section = '.text'): string {
  return `.section ${section},"ax",@progbits\n.globl ${name}\n.type ${name},@function\n${name}:\n${body}\n.size ${name},.-${name}\n`;
}
