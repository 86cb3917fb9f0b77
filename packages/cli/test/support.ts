/**
 * Helpers for the CLI tests: build the packages once if their dist is missing or older than their
 * sources, then run the BUILT command the way a user does (`node packages/cli/bin/libos-patch.js`).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const bin = join(root, 'packages', 'cli', 'bin', 'libos-patch.js');
const PACKAGES = ['elfkit', 'encoder', 'recipe', 'cli'];

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function oldestBuild(pkg: string): number {
  const outputs = pkg === 'cli' ? ['index.js', 'bin.js'] : ['index.js'];
  let oldest = Infinity;
  for (const out of outputs) {
    const path = join(root, 'packages', pkg, 'dist', out);
    if (!existsSync(path)) return -Infinity;
    oldest = Math.min(oldest, statSync(path).mtimeMs);
  }
  return oldest;
}

let built = false;

/** Build every package (`npm run build`) unless each dist is newer than its sources. */
export function ensureBuilt(): void {
  if (built) return;
  const stale = PACKAGES.filter((pkg) => {
    const dir = join(root, 'packages', pkg);
    // The build scripts too: they decide what the bundle holds (scripts/bundle.ts, trim-iced.ts)
    // and write the built-in recipe table (recipe's scripts/write-builtins.ts).
    const scripts = existsSync(join(dir, 'scripts')) ? newestMtime(join(dir, 'scripts')) : 0;
    const sources = Math.max(newestMtime(join(dir, 'src')), scripts, statSync(join(dir, 'package.json')).mtimeMs);
    return oldestBuild(pkg) < sources;
  });
  if (stale.length > 0) {
    const run = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (run.status !== 0) throw new Error(`npm run build failed (stale: ${stale.join(', ')}):\n${run.stdout}\n${run.stderr}`);
  }
  built = true;
}

/** What one run of the command gave. */
export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stderr's lines, without the empty last one. */
  errLines: string[];
}

/** Run the built `libos-patch` with `args`. */
export function cli(args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; input?: string } = {}): CliRun {
  ensureBuilt();
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, ...options.env };
  const run: SpawnSyncReturns<string> = spawnSync(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? root,
    encoding: 'utf8',
    env: env as NodeJS.ProcessEnv,
    input: options.input,
    maxBuffer: 256 * 1024 * 1024,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, errLines: run.stderr.split('\n').filter((l) => l !== '') };
}

/** The bytes' digest and the mtime of a file: equal before and after means the file was not touched. */
export function fingerprint(path: string): { sha256: string; mtimeMs: number; mode: number } {
  const stat = statSync(path);
  return { sha256: createHash('sha256').update(readFileSync(path)).digest('hex'), mtimeMs: stat.mtimeMs, mode: stat.mode };
}

/** A fresh temporary folder. */
export function tempDir(prefix = 'libos-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The lines of stderr that are errors (`libos-patch: error: ...`). */
export function errorLines(run: CliRun): string[] {
  return run.errLines.filter((l) => l.startsWith('libos-patch: error: '));
}
