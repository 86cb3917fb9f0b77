// Test helpers for the handler linker: compile handlers with gcc, run linked handlers in a small C
// harness that maps them at their link addresses, and decode linked text with iced-x86.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import iced from 'iced-x86';
import { compileHandler, type CompileOptions, type HandlerLayout, type LinkedHandler } from '@libos/recipe';

export const dir = mkdtempSync(join(tmpdir(), 'libos-link-test-'));
let serial = 0;
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** Writes `source` to a fresh file and returns its path. */
export function writeSource(source: string, ext = 'c'): string {
  const path = join(dir, `src${serial++}.${ext}`);
  writeFileSync(path, source);
  return path;
}

/** Compiles C `source` the way every handler is compiled (compileHandler). */
export async function compileSource(source: string, opts: CompileOptions = {}): Promise<Uint8Array> {
  return compileHandler(writeSource(source), opts);
}

/** Compiles `source` with gcc and exactly `flags` (for objects the handler flags would not produce). */
export function gccObject(source: string, flags: string[], ext = 'c'): Uint8Array {
  const src = writeSource(source, ext);
  const out = `${src}.o`;
  execFileSync('gcc', [...flags, '-c', src, '-o', out], { stdio: 'pipe' });
  return new Uint8Array(execFileSync('cat', [out]));
}

const HARNESS = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

typedef long (*handler_t)(long, long, long, long, long, long, long);

/* Maps memsz bytes at va (never over an existing mapping), fills them from path, then sets prot. */
static void map_part(const char *path, unsigned long va, unsigned long memsz, int prot) {
    unsigned long size = (memsz + 4095) & ~4095UL;
    if (size == 0) return;
    void *at = mmap((void *)va, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (at != (void *)va) { fprintf(stderr, "mmap 0x%lx: %s\n", va, strerror(errno)); exit(2); }
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); exit(2); }
    unsigned long done = 0;
    for (;;) {
        ssize_t n = read(fd, (char *)at + done, size - done);
        if (n < 0) { perror("read"); exit(2); }
        if (n == 0) break;
        done += (unsigned long)n;
    }
    close(fd);
    if (mprotect(at, size, prot) != 0) { perror("mprotect"); exit(2); }
}

/* argv: text textVa data dataVa dataMemSize entryVa counterVa */
int main(int argc, char **argv) {
    if (argc != 8) { fprintf(stderr, "usage\n"); return 2; }
    unsigned long text_va = strtoul(argv[2], 0, 0), data_va = strtoul(argv[4], 0, 0);
    struct stat st;
    if (stat(argv[1], &st) != 0) { perror(argv[1]); return 2; }
    map_part(argv[1], text_va, (unsigned long)st.st_size, PROT_READ | PROT_EXEC);
    map_part(argv[3], data_va, strtoul(argv[5], 0, 0), PROT_READ | PROT_WRITE);
    handler_t h = (handler_t)strtoul(argv[6], 0, 0);
    long *counter = (long *)strtoul(argv[7], 0, 0);
    char name[16] = {0};
    printf("getpid %ld %ld\n", h(39, 0, 0, 0, 0, 0, 0), (long)getpid());
    printf("getppid %ld %ld\n", h(110, 0, 0, 0, 0, 0, 0), (long)getppid());
    printf("name %ld %s\n", h(1001, 1, (long)name, sizeof name, 0, 0, 0), name);
    printf("seen %ld %ld %ld\n", h(1002, 39, 0, 0, 0, 0, 0), h(1002, 110, 0, 0, 0, 0, 0), h(1002, 7, 0, 0, 0, 0, 0));
    printf("bias %ld\n", h(1003, 0, 0, 0, 0, 0, 0));
    printf("write %ld\n", h(1, 1, (long)"forwarded\n", 10, 0, 0, 0));
    long calls = h(1000, 0, 0, 0, 0, 0, 0);
    printf("counter %ld %ld\n", calls, *counter);
    return 0;
}
`;

let harnessPath: string | undefined;

/** Builds the harness once (an ordinary PIE, so ASLR keeps it away from the fixed addresses). */
export function harness(): string {
  if (harnessPath === undefined) {
    const src = writeSource(HARNESS);
    harnessPath = join(dir, 'harness');
    execFileSync('gcc', ['-O1', '-o', harnessPath, src], { stdio: 'pipe' });
  }
  return harnessPath;
}

/** Runs `linked` in the harness at `layout`; returns stdout. */
export function runInHarness(linked: LinkedHandler, layout: HandlerLayout, counterVa: bigint): string {
  const base = join(dir, `run${serial++}`);
  writeFileSync(`${base}.text`, linked.text);
  writeFileSync(`${base}.data`, linked.data);
  const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
  return execFileSync(harness(), [
    `${base}.text`, hex(layout.textVa), `${base}.data`, hex(layout.dataVa), String(linked.dataMemSize),
    hex(linked.entryVa), hex(counterVa),
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One decoded instruction of linked text: its va, GNU text, and where it points, if anywhere. */
export interface DecodedRef {
  readonly va: bigint;
  readonly text: string;
  /** Target of a RIP-relative memory operand. */
  readonly ripTarget?: bigint;
  /** Target of a direct near branch or call. */
  readonly branchTarget?: bigint;
}

/** Decodes `code` at `va`, keeping the instructions that refer to an address. */
export function decodeRefs(code: Uint8Array, va: bigint): DecodedRef[] {
  const { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction, OpKind } = iced;
  const decoder = new Decoder(64, code, DecoderOptions.None);
  decoder.ip = va;
  const formatter = new Formatter(FormatterSyntax.Gas);
  const instr = new Instruction();
  const out: DecodedRef[] = [];
  try {
    while (decoder.canDecode) {
      decoder.decodeOut(instr);
      const text = formatter.format(instr);
      if (instr.isIpRelMemoryOperand) {
        out.push({ va: instr.ip, text, ripTarget: instr.ipRelMemoryAddress });
      } else if (instr.op0Kind === OpKind.NearBranch64 && instr.opCount === 1) {
        out.push({ va: instr.ip, text, branchTarget: instr.nearBranch64 });
      }
    }
  } finally {
    instr.free();
    formatter.free();
    decoder.free();
  }
  return out;
}

/** The va of every instruction in `code` decoded at `va`. */
export function instructionStarts(code: Uint8Array, va: bigint): Set<bigint> {
  const { Decoder, DecoderOptions, Instruction } = iced;
  const decoder = new Decoder(64, code, DecoderOptions.None);
  decoder.ip = va;
  const instr = new Instruction();
  const out = new Set<bigint>();
  try {
    while (decoder.canDecode) {
      decoder.decodeOut(instr);
      out.add(instr.ip);
    }
  } finally {
    instr.free();
    decoder.free();
  }
  return out;
}
