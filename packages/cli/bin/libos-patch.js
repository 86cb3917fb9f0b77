#!/bin/sh
":" //; unset NODE_EXTRA_CA_CERTS; exec node "$0" "$@"
// Run as a command, this file is first a shell script whose one line starts node on it (to node,
// that line is a string and a comment), without NODE_EXTRA_CA_CERTS: Node parses the CA bundle it
// names before running any JavaScript (35-40 ms of every start here), and libos-patch opens no TLS
// connection. Why and what else: README.md, "How the command starts".
//
// Loads the built CLI. Kept as a committed file so npm links the bin at `npm ci` time.
//
// The fast way is dist/cli-bundle.js (scripts/bundle.ts): the whole CLI in one file, compiled with
// the V8 code cache beside it; loading the modules one by one costs more than most rewrites. The
// bundle is used only while it is at least as new as every file it was made from; otherwise, when
// it is missing, or with --debug (stack traces then name the modules' files), the CLI's modules are
// imported as usual.
//
// CommonJS (bin/package.json says so): an ES module as the main script starts Node's ESM loader
// first, 5-10 ms of every command.
'use strict';
// When the bin began, for --timings (Node's own start is the time before this line).
const binStart = performance.now();
const { readFileSync, statSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { Script } = require('node:vm');

// iced-x86 runs as wasm. By default V8 recompiles its hot functions with TurboFan, and for a
// one-shot rewrite that compiling costs more than it saves (libc.so.6: discovery 93 -> 48 ms, the
// whole apply ~70 ms less; a 100 MB input takes the same time either way). Liftoff, the baseline
// compiler, runs it all. Set before any wasm is compiled; a V8 that may not know the flag is left
// alone (it would print an error for an unknown one).
//
// The same holds for JavaScript: V8 starts optimizing a function with TurboFan after a small budget
// of work in it, and a 2 MB library's rewrite pays for compiling functions it leaves soon after.
// Nine times Node 20's default budget (66 KB -> 600 KB) leaves the rewrite of libc.so.6 30-40 ms faster
// and that of a 100 MB input unchanged (its hot loops still get optimized). Both flags are part of
// the code cache's flag hash: scripts/bundle.ts's training run sets them the same way.
//
// Node compiles its own modules (node:crypto, zlib, fs/promises...) from a code cache built into
// it, and V8 refuses that cache once any flag has been set (flags are part of its key): loaded
// after the flags, those modules took three times as long, 13 ms of every rewrite. The commands
// that load the engine get them first; the light ones (version, help, the recipe list, the
// schema) do not pay for them.
const LIGHT = ['--version', '-V', '--help', '-h', 'help', 'recipes', 'schema', undefined];
if (!LIGHT.includes(process.argv[2])) {
  require('node:crypto');
  require('node:zlib');
  require('node:fs/promises');
  require('node:os');
  void require('node:util').parseArgs;
  // The streams stdout and stderr are made of.
  void process.stdout;
  void process.stderr;
}
if (Number(process.versions.v8.split('.')[0]) <= 13) {
  setFlagsFromString('--liftoff-only');
  setFlagsFromString('--interrupt-budget=600000');
}

const dist = join(__dirname, '..', 'dist');

/**
 * The bundle's exports, or undefined when it is missing or older than what it was made from, or
 * when --debug asks for stack traces that name the modules' own files and lines.
 */
function loadBundle() {
  if (process.argv.includes('--debug')) return undefined;
  const filename = join(dist, 'cli-bundle.js');
  let source;
  try {
    const bytes = readFileSync(filename);
    const { inputs, ascii } = JSON.parse(bytes.toString('latin1', 3, bytes.indexOf(10)));
    // An ASCII file (as scripts/bundle.ts writes it) needs no UTF-8 decoding.
    source = bytes.toString(ascii === true ? 'latin1' : 'utf8');
    const built = statSync(filename).mtimeMs;
    for (const input of inputs) if (statSync(join(dist, input)).mtimeMs > built) return undefined;
  } catch {
    return undefined;
  }
  const cacheOut = process.env.LIBOS_PATCH_WRITE_CODE_CACHE;
  let cachedData;
  if (!cacheOut) {
    try {
      cachedData = readFileSync(join(dist, 'cli-bundle.cache'));
    } catch {
      // No cache: V8 compiles the bundle instead.
    }
  }
  const module = { exports: {} };
  let script;
  try {
    script = new Script(source, { filename, cachedData });
    script.runInThisContext()(module.exports, createRequire(filename), module, filename, dist);
  } catch {
    return undefined;
  }
  // scripts/bundle.ts's training run: keep the bytecode of everything this run compiled.
  if (cacheOut) process.once('beforeExit', () => writeFileSync(cacheOut, script.createCachedData()));
  return module.exports;
}

const cli = loadBundle();
(cli !== undefined ? Promise.resolve(cli) : import('../dist/bin.js')).then((m) => m.main(process.argv.slice(2), undefined, { binStart, cliLoaded: performance.now() })).catch((err) => {
  process.stderr.write(`libos-patch: error: ${err && err.code === 'ERR_MODULE_NOT_FOUND' ? 'the CLI is not built; run `npm run build` first' : String(err && err.message || err)}\n`);
  process.exit(3);
});
