#!/usr/bin/env node
// Runs every package's uvu suite as real ESM (tsx loader) and prints one closing line,
// `N passed, N failed`, summed over all packages. uvu prints Total/Passed only, so the
// failed count is derived; a package whose run dies before uvu's summary counts as one
// failure so that a crash can never look like a green run. Tests skipped for a missing prerequisite
// (fixtures/prerequisites.ts prints a `SKIP:` line for each) count in neither figure; their number
// is said on the line before.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const only = process.argv.slice(2);
const uvuBin = join(root, 'node_modules', 'uvu', 'bin.js');
const packages = readdirSync(join(root, 'packages'))
  .filter((p) => existsSync(join(root, 'packages', p, 'test')))
  .filter((p) => only.length === 0 || only.includes(p))
  .sort();

let passed = 0;
let failed = 0;
let skipped = 0;
for (const pkg of packages) {
  const dir = join(root, 'packages', pkg);
  process.stdout.write(`\n=== @libos/${pkg} ===\n`);
  const run = spawnSync(
    process.execPath,
    ['--conditions=libos-source', '--import', 'tsx', uvuBin, 'test', '\\.test\\.ts$', '-c', 'false'],
    { cwd: dir, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 256 * 1024 * 1024 },
  );
  const out = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  process.stdout.write(out);
  const total = /Total:\s+(\d+)/.exec(out);
  const pass = /Passed:\s+(\d+)/.exec(out);
  if (!total || !pass) {
    process.stdout.write(`\n@libos/${pkg}: the test run ended without a summary (exit ${run.status}, signal ${run.signal})\n`);
    failed += 1;
    continue;
  }
  const t = Number(total[1]);
  const p = Number(pass[1]);
  skipped += Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  passed += p;
  failed += t - p;
  if (run.status !== 0 && t === p) failed += 1; // crashed after reporting
}
if (skipped > 0) process.stdout.write(`\n${skipped} skipped (a prerequisite is missing: see the SKIP: lines)`);
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
