// Shared by the write-*.test.ts files: a hand-built edit (no encoder) that sends every annotated
// site through a per-site trampoline, and helpers to run programs and tools on the outputs.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { planLayout, readElf, type ElfEdit, type ElfFile, type LayoutRequest, type SegmentPlacement } from '../src/index.js';

const exec = promisify(execFile);

/** Bytes per trampoline slot (the counter variant's 14 bytes, rounded up). */
export const SLOT = 16;
/** Bytes an annotated site reserves: `syscall` + 10 NOPs. */
export const SITE_LENGTH = 12;

/** A fixture's bytes and its parsed form. */
export function load(path: string): { input: Buffer; elf: ElfFile } {
  const input = readFileSync(path);
  return { input, elf: readElf(input) };
}

/** The edit and what a test needs to check it. */
export interface JumpEdit {
  edit: ElfEdit;
  text: SegmentPlacement;
  data: SegmentPlacement | undefined;
  /** Trampoline symbol names, by site index. */
  names: string[];
  /** Site vas, by index. */
  sites: bigint[];
}

function rel32(from: bigint, to: bigint): number {
  const d = to - from;
  if (d < -0x80000000n || d > 0x7fffffffn) throw new Error(`rel32 out of range: 0x${from.toString(16)} -> 0x${to.toString(16)}`);
  return Number(d);
}

/**
 * For every annotated site: the 12 bytes become `e9 rel32` to a per-site trampoline plus 7 NOPs;
 * the trampoline is `syscall; jmp site+12`. With `counter`, each trampoline first does
 * `incq libos_counter(%rip)` on a 64-bit counter in a new RW segment (PROGBITS bytes plus a
 * zero-filled tail, so both section kinds are exercised).
 */
export function jumpEdit(elf: ElfFile, options: { counter?: boolean; metadata?: Uint8Array } = {}): JumpEdit {
  const annotations = elf.syscallAnnotations();
  if (annotations.length === 0) throw new Error('fixture has no annotated sites');
  const requests: LayoutRequest[] = [{ name: '.libos.text', size: annotations.length * SLOT, flags: 'rx' }];
  if (options.counter === true) requests.push({ name: '.libos.data', size: 64, flags: 'rw' });
  const [text, data] = planLayout(elf, requests);
  const code = new Uint8Array(annotations.length * SLOT).fill(0xcc);
  const cv = new DataView(code.buffer);
  const names: string[] = [];
  const patches = annotations.map((a, i) => {
    if (a.length !== SITE_LENGTH) throw new Error(`site 0x${a.site.toString(16)} has ${a.length} bytes`);
    const t = text!.va + BigInt(i * SLOT);
    const patch = new Uint8Array(SITE_LENGTH).fill(0x90);
    patch[0] = 0xe9;
    new DataView(patch.buffer).setInt32(1, rel32(a.site + 5n, t), true);
    let p = i * SLOT;
    if (data !== undefined) {
      code.set([0x48, 0xff, 0x05], p);
      cv.setInt32(p + 3, rel32(t + 7n, data.va), true);
      p += 7;
    }
    code.set([0x0f, 0x05, 0xe9], p);
    cv.setInt32(p + 3, rel32(text!.va + BigInt(p + 7), a.site + BigInt(SITE_LENGTH)), true);
    names.push(`libos_trampoline_${i}`);
    const offset = elf.vaToOffset(a.site);
    if (offset === undefined) throw new Error(`site 0x${a.site.toString(16)} is not in the file`);
    return { offset, bytes: patch };
  });
  const edit: ElfEdit = {
    patches,
    segments: [
      { name: '.libos.text', va: text!.va, flags: 'rx', bytes: code },
      ...(data !== undefined ? [{ name: '.libos.data', va: data.va, flags: 'rw' as const, bytes: new Uint8Array(16), memsz: 64 }] : []),
    ],
    symbols: [
      ...names.map((name, i) => ({ name, va: text!.va + BigInt(i * SLOT), size: data !== undefined ? 14 : 7, type: 'func' as const })),
      ...(data !== undefined ? [{ name: 'libos_counter', va: data.va, size: 8, type: 'object' as const }] : []),
    ],
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
  };
  return { edit, text: text!, data, names, sites: annotations.map((a) => a.site) };
}

const created: string[] = [];

/** A fresh private temporary directory, removed by {@link removeTempDirs}. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'libos-write-'));
  created.push(dir);
  return dir;
}

/** Removes every directory {@link tempDir} made (a suite's `after` hook). */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes an executable file. */
export function writeExecutable(dir: string, name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes, { mode: 0o755 });
  return path;
}

/** Runs a command; never throws for a non-zero exit. */
export async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(cmd, args, { env: { ...process.env, LC_ALL: 'C', ...env }, maxBuffer: 1 << 28, timeout: 120_000 });
    return { status: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; signal?: string };
    if (typeof err.code !== 'number') throw new Error(`${cmd} ${args.join(' ')}: ${String(err.signal ?? err.code)} ${err.stderr ?? ''}`);
    return { status: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** The offsets of every site patch, to check which chunk a change falls in. */
export function patchOffsets(edit: ElfEdit): number[] {
  return edit.patches.map((p) => p.offset);
}
