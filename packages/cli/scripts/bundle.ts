/**
 * Builds `dist/cli-bundle.js`, the one-file CLI that `bin/libos-patch.js` runs, and its V8 code
 * cache `dist/cli-bundle.cache`.
 *
 * Why: a one-shot `libos-patch apply` used to spend more time loading than working. Loading the
 * module graph (the CLI, the three engine packages, zod's and yaml's many files, iced-x86's 900 kB
 * of JavaScript) as ES modules took about 0.17 s before the first byte of the input was read. One
 * CommonJS file compiled through `vm.Script` with a code cache takes a few milliseconds: no
 * resolution per file, no parsing, and the cache holds the bytecode of every function a training
 * run executed, so the work itself does not compile them either.
 *
 * The bundle is made from the engine packages' built `dist/` (what their own builds produce, so
 * run this after them, as `npm run build` does) and iced-x86's own file. Paths those modules take
 * from `import.meta.url` or `__dirname` (the built-in recipes, libos-handler.h, iced-x86's wasm)
 * are rewritten to their original files' places, relative to the bundle. The first line of the
 * bundle lists its inputs: the bin loads the bundle only while none of them is newer than it (a
 * package rebuilt alone) and all are where they were, and loads the modules themselves otherwise.
 *
 * The code cache comes from a training run of the bundle (`apply --recipe unannotated` on the libc
 * this node runs on); V8 rejects it, and the bin then compiles as usual, under another node.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { checkCodeReads, keepFunctionExports, parseLoader, reachableIcedExports, trimCodeEnum, wasmExports, wordsOf } from './trim-iced.js';

const cliDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const distDir = join(cliDir, 'dist');
const bundlePath = join(distDir, 'cli-bundle.js');
const cachePath = join(distDir, 'cli-bundle.cache');
/** iced-x86's wasm with only the exports the CLI can reach (scripts/trim-iced.ts). */
const trimmedWasmPath = join(distDir, 'iced-x86-trimmed.wasm');

/** A path relative to dist/, with forward slashes, as the bundle records it. */
function fromDist(path: string): string {
  return relative(distDir, path).split(sep).join('/');
}

/** The files whose import.meta.url or __dirname the bundle rewrites, and every input it records. */
const inputs = new Set<string>();
/** iced-x86's loader as read, for the exports it calls. */
let icedLoader: { path: string; text: string } | undefined;

/** What the second pass keeps of iced-x86: the words of every other input, and the loader parsed. */
interface IcedUse { words: ReadonlySet<string>; loader: ReturnType<typeof parseLoader> }

/**
 * Rewrites module-relative locations to the original file's place: `import.meta.url` in the
 * engine packages' dist files, `__dirname` in iced-x86's loader (which reads its wasm beside it).
 */
const keepLocations = (iced: IcedUse | undefined): Plugin => ({
  name: 'keep-module-locations',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/](elfkit|encoder|recipe)[\\/]dist[\\/]index\.js$/ }, (args) => {
      inputs.add(args.path);
      // iced-x86, zod and yaml are required through createRequire (iced-module.ts, lazy-modules.ts):
      // a plain require lets the bundle hold them, compiled from the code cache too, and still
      // evaluated only when first required.
      // Whatever tsup names the import (createRequire2, createRequire3... when a file has several).
      const lazy = /\b[\w$]+\(import\.meta\.url\)\((["'])(iced-x86|zod|yaml)\1\)/g;
      const text = readFileSync(args.path, 'utf8').replace(lazy, (_, _quote: string, pkg: string) => `require(${JSON.stringify(pkg)})`);
      if (/\(import\.meta\.url\)\s*\(\s*["'`](iced-x86|zod|yaml)/.test(text)) throw new Error(`${args.path}: a lazy require of iced-x86, zod or yaml the bundle does not recognise; update scripts/bundle.ts`);
      return { contents: text.replaceAll('import.meta.url', `__libosUrl(${JSON.stringify(fromDist(args.path))})`), loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]iced-x86[\\/]iced_x86\.js$/ }, (args) => {
      inputs.add(args.path);
      inputs.add(join(dirname(args.path), 'iced_x86_bg.wasm'));
      const text = readFileSync(args.path, 'utf8');
      const wasm = "require('path').join(__dirname, 'iced_x86_bg.wasm')";
      if (!text.includes(wasm)) throw new Error(`${args.path}: iced-x86 no longer finds its wasm as \`${wasm}\`; update scripts/bundle.ts`);
      icedLoader = { path: args.path, text };
      // The first pass only lists the inputs; the second cuts the Code enum to what they use.
      let loader = text;
      if (iced !== undefined) {
        const trimmed = trimCodeEnum(iced.loader, iced.words);
        loader = trimmed.text;
        process.stdout.write(`scripts/bundle.ts: iced-x86's Code enum with ${trimmed.kept} of its ${trimmed.total} names\n`);
      }
      return { contents: loader.replace(wasm, `__libosPath(${JSON.stringify(fromDist(trimmedWasmPath))})`), loader: 'js' };
    });
  },
});

async function bundle(): Promise<void> {
  // Two passes: the first finds the bundle's inputs, whose words say what of iced-x86 the second
  // (and the wasm written beside it) keeps.
  const listed = await esbuild(undefined);
  if (icedLoader === undefined) throw new Error('the bundle does not hold iced-x86');
  const loaderPath = resolve(icedLoader.path);
  const sources = Object.keys(listed.metafile.inputs).map((p) => resolve(p)).filter((p) => p !== loaderPath).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
  // Ours (not zod's or yaml's) are the ones that read iced-x86.
  checkCodeReads(sources.filter((s) => !s.path.includes(`${sep}node_modules${sep}`)));
  const iced: IcedUse = { words: wordsOf(sources.map((s) => s.text)), loader: parseLoader(icedLoader.text) };
  writeTrimmedWasm(iced);
  await writeBundle(await esbuild(iced));
}

/** One esbuild pass over the CLI; `iced`: what of iced-x86 to keep, known after the first. */
function esbuild(iced: IcedUse | undefined) {
  return build({
    entryPoints: [join(cliDir, 'src', 'bin.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    // Resolve @libos/* through node_modules to the packages' dist, not the root tsconfig's paths to src.
    tsconfigRaw: '{}',
    plugins: [keepLocations(iced)],
    logLevel: 'warning',
    legalComments: 'none',
    // Without comments and indentation the file is 40% smaller and, esbuild escaping every other
    // non-ASCII character, plain ASCII: the bin reads it as latin1, several times faster than
    // decoding UTF-8. Names are kept (error classes, stack traces).
    // LIBOS_BUNDLE_PRETTY=1 keeps one statement a line: a CPU profile of the bundle then says which line.
    minifyWhitespace: process.env.LIBOS_BUNDLE_PRETTY === undefined,
    minifySyntax: true,
    metafile: true,
  });
}

/** Writes the bundle: the code of {@link bundle}'s second pass, with a header listing its inputs. */
async function writeBundle(result: Awaited<ReturnType<typeof esbuild>>): Promise<void> {
  const code = result.outputFiles[0]!.text;
  for (const pkg of ['elfkit', 'encoder', 'recipe']) {
    if (![...inputs].some((p) => p.includes(`${sep}${pkg}${sep}dist${sep}`))) throw new Error(`the bundle does not hold @libos/${pkg}'s dist: was it built?`);
  }
  // eslint-disable-next-line no-control-regex
  const header = { inputs: [...inputs].map(fromDist).sort(), ascii: !/[^\x00-\x7f]/.test(code) };
  // A function expression: vm.Script returns it, the bin calls it like Node calls a CommonJS module.
  const text = [
    `// ${JSON.stringify(header)}`,
    '// The libos-patch CLI in one file, for bin/libos-patch.js (scripts/bundle.ts). Not a module of its own.',
    '(function (exports, require, module, __filename, __dirname) {',
    "const __libosPath = (p) => require('node:path').join(__dirname, p);",
    "const __libosUrl = (p) => require('node:url').pathToFileURL(__libosPath(p)).href;",
    code,
    '})',
    '',
  ].join('\n');
  // Written aside and renamed into place: a CLI started meanwhile (a parallel test run) sees the
  // old bundle or the new one, never half of one.
  rmSync(cachePath, { force: true });
  writeFileSync(`${bundlePath}.${process.pid}.tmp`, text);
  renameSync(`${bundlePath}.${process.pid}.tmp`, bundlePath);
}

/** Writes iced-x86's wasm with only the exports the bundle's sources (by their words) can reach. */
function writeTrimmedWasm(iced: IcedUse): void {
  const original = join(dirname(icedLoader!.path), 'iced_x86_bg.wasm');
  const { wasm, kept, total } = keepFunctionExports(readFileSync(original), reachableIcedExports(iced.loader, iced.words));
  wasmExports(wasm); // throws if the module no longer validates
  writeFileSync(`${trimmedWasmPath}.${process.pid}.tmp`, wasm);
  renameSync(`${trimmedWasmPath}.${process.pid}.tmp`, trimmedWasmPath);
  inputs.add(trimmedWasmPath);
  process.stdout.write(`scripts/bundle.ts: iced-x86's wasm with ${kept} of its ${total} function exports\n`);
}

/** The libc this process runs on (any glibc system has one), else node itself: a file with sites. */
function trainingInput(): string {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const libc = /\s(\/\S*\/libc\.so\.6)$/m.exec(maps)?.[1];
    if (libc !== undefined && statSync(libc).isFile()) return libc;
  } catch {
    // Not Linux, or no /proc: fall through.
  }
  return process.execPath;
}

/** Runs the bundle once through the bin, which writes the code cache of what it compiled. */
function train(): void {
  const dir = mkdtempSync(join(tmpdir(), 'libos-bundle-'));
  try {
    const bin = join(cliDir, 'bin', 'libos-patch.js');
    const run = spawnSync(process.execPath, [bin, 'apply', '--recipe', 'unannotated', trainingInput(), '-o', join(dir, 'out')], {
      encoding: 'utf8',
      env: { ...process.env, LIBOS_PATCH_WRITE_CODE_CACHE: join(dir, 'cache') },
    });
    if (run.status === 0 && statSync(join(dir, 'cache'), { throwIfNoEntry: false })) {
      copyFileSync(join(dir, 'cache'), `${cachePath}.${process.pid}.tmp`);
      renameSync(`${cachePath}.${process.pid}.tmp`, cachePath);
    } else {
      // The CLI still works without a cache, only slower: say so, do not fail the build.
      process.stderr.write(`scripts/bundle.ts: no code cache (training run exited ${run.status}): ${run.stderr.slice(-500)}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await bundle();
train();
