// scripts/trim-iced.ts: which of iced-x86's wasm exports the bundle can reach, and the module
// rewritten with only those.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keepFunctionExports, reachableIcedExports, wasmExports } from '../scripts/trim-iced.js';

const LOADER = `
let wasm;
const Finalization = new FinalizationRegistry((ptr) => wasm.__wbg_thing_free(ptr));
function helper(x) { return wasm.helper_export(x); }
function unused(x) { return wasm.unused_export(x); }
class Thing {
  static __wrap(ptr) { return wasm.thing_wrap(ptr); }
  constructor() { this.ptr = wasm.thing_new(); }
  get size() { return helper(wasm.thing_size(this.ptr)); }
  other() { return Other.__wrap(wasm.thing_other(this.ptr)); }
  never() { return wasm.thing_never(this.ptr); }
}
class Other {
  static __wrap(ptr) { return wasm.other_wrap(ptr); }
  get color() { return wasm.other_color(this.ptr); }
}
module.exports.Thing = Thing;
wasm = require('x').exports;
`;

test('an export is kept when code that can run calls it: top level, members named by the sources, what they call', () => {
  const used = reachableIcedExports(LOADER, ['const t = new iced.Thing(); t.size; t.other().color']);
  assert.equal([...used].sort(), ['__wbg_thing_free', 'helper_export', 'other_color', 'other_wrap', 'thing_new', 'thing_other', 'thing_size', 'thing_wrap'].sort());
  // Named in a string or a destructuring counts the same as a call.
  assert.ok(reachableIcedExports(LOADER, ["const { never } = x; x['color']"]).has('thing_never'));
  assert.ok(reachableIcedExports(LOADER, ["x['color']"]).has('other_color'));
  // What no source names is left out; a constructor counts as named by its class's export.
  const none = reachableIcedExports(LOADER, ['nothing here']);
  assert.not.ok(none.has('thing_never') || none.has('unused_export') || none.has('other_color'));
  assert.ok(none.has('thing_new'));
});

test('a computed wasm[...] call cannot be followed: the build stops', () => {
  assert.throws(() => reachableIcedExports('let wasm; function f(n) { return wasm[n](); }', ['f']), /computed name/);
});

const icedWasm = readFileSync(join(dirname(createRequire(import.meta.url).resolve('iced-x86')), 'iced_x86_bg.wasm'));

test('the rewritten module keeps exactly the function exports asked for, its memory, and validates', () => {
  const all = wasmExports(icedWasm);
  const functions = all.filter((e) => e.kind === 'function').map((e) => e.name);
  const keep = new Set([functions[0]!, functions[10]!, functions[functions.length - 1]!]);
  const { wasm, kept, total } = keepFunctionExports(icedWasm, keep);
  assert.is(total, functions.length);
  assert.is(kept, 3);
  const after = wasmExports(wasm);
  assert.equal(after.filter((e) => e.kind === 'function').map((e) => e.name).sort(), [...keep].sort());
  assert.equal(after.filter((e) => e.kind !== 'function'), all.filter((e) => e.kind !== 'function'));
  // Everything but the export section is byte for byte the same: the module shrinks by the names left out.
  assert.ok(wasm.length < icedWasm.length);
  assert.throws(() => keepFunctionExports(icedWasm, new Set(['no_such_export'])), /no_such_export/);
});

test.run();
