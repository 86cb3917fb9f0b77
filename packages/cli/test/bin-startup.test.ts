// The bin sets V8 flags, and V8 then refuses the code cache Node compiles its own modules from:
// every Node module a rewrite needs must be loaded before the flags (bin/libos-patch.js), or it
// is compiled from source on every run. A preload hooks v8.setFlagsFromString and lists what
// loads after it.
import { spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMANDS } from '../src/command-list.js';
import { bin, ensureBuilt, tempDir } from './support.js';

const dir = tempDir('libos-startup-');
const hook = join(dir, 'after-flags.cjs');
writeFileSync(hook, `
const v8 = require('node:v8');
const set = v8.setFlagsFromString;
let mark;
v8.setFlagsFromString = (flags) => { if (mark === undefined) mark = process.moduleLoadList.length; return set(flags); };
process.on('exit', () => {
  const after = mark === undefined ? [] : process.moduleLoadList.slice(mark).filter((m) => m.startsWith('NativeModule '));
  require('node:fs').writeFileSync(process.env.AFTER_FLAGS_OUT, JSON.stringify({ flagsSet: mark !== undefined, after }));
});
`);

function afterFlags(args: string[]): { flagsSet: boolean; after: string[] } {
  const out = join(dir, `after-${args[0]}.json`);
  const run = spawnSync(process.execPath, ['-r', hook, bin, ...args], { encoding: 'utf8', env: { ...process.env, AFTER_FLAGS_OUT: out } });
  assert.ok(run.status === 0 || run.status === 1, run.stderr);
  return JSON.parse(readFileSync(out, 'utf8'));
}

// The bin cannot import command-list.ts (it runs before the bundle loads): its list of light
// commands, which skip the preloads, must name commands that exist.
test("the bin's light commands are flags, help, or commands of command-list.ts", () => {
  const light = /const LIGHT = \[([^\]]*)\]/.exec(readFileSync(bin, 'utf8'));
  assert.ok(light, 'the bin lists its light commands');
  const names = [...light[1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
  assert.ok(names.length >= 5);
  for (const name of names) {
    if (name.startsWith('-') || name === 'help') continue;
    assert.ok(COMMANDS.some((c) => c.name === name), `${name} is a command`);
  }
});

test('apply and verify load no Node module after the V8 flags but `process`', () => {
  ensureBuilt();
  const output = join(dir, 'busybox.out');
  for (const args of [['apply', '-r', 'unannotated', '/bin/true', '-o', output], ['verify', output]]) {
    const { flagsSet, after } = afterFlags(args);
    // The bin sets its flags only on the V8s it knows (up to 13); on a later one there is nothing to check.
    const knownV8 = Number(process.versions.v8.split('.')[0]) <= 13;
    assert.is(flagsSet, knownV8, 'the bin sets its V8 flags on the V8s it knows, and only there');
    assert.equal(after.filter((m) => m !== 'NativeModule process'), [], `${args[0]} loads after the flags: ${after.join(', ')}`);
  }
});

// Run as a command (as npm links it), the bin is first a shell line that starts node without
// NODE_EXTRA_CA_CERTS, which costs Node 35-40 ms of certificate parsing before any JavaScript. A
// bundle that cannot be read makes Node print a warning at start: none may appear.
test('run as a command, the bin starts node without NODE_EXTRA_CA_CERTS and passes arguments and status through', () => {
  ensureBuilt();
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'no-such-bundle.pem') };
  // The control: node itself, started with the variable, warns.
  const direct = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env });
  assert.match(direct.stderr, /extra certs/, 'node warns about an unreadable NODE_EXTRA_CA_CERTS');
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8', env });
  assert.is(version.status, 0, version.stderr);
  assert.is(version.stderr, '');
  assert.match(version.stdout, /^libos-patch \d/);
  // Arguments keep their spaces; the exit status is the CLI's own. Run through a link, as npm's
  // node_modules/.bin/libos-patch is.
  const link = join(dir, 'libos-patch');
  symlinkSync(bin, link);
  const missing = spawnSync(link, ['sites', join(dir, 'a file with spaces')], { encoding: 'utf8', env });
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /a file with spaces: cannot read the input/);
  assert.not.match(missing.stderr, /extra certs/);
});

test.run();
