// scripts/trim-iced.ts: which of iced-x86's wasm exports the bundle can reach, and the module
// rewritten with only those.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keepFunctionExports, reachableIcedExports, trimCodeEnum, wasmExports, wordsOf } from '../scripts/trim-iced.js';

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
  const used = reachableIcedExports(LOADER, wordsOf(['const t = new iced.Thing(); t.size; t.other().color']));
  assert.equal([...used].sort(), ['__wbg_thing_free', 'helper_export', 'other_color', 'other_wrap', 'thing_new', 'thing_other', 'thing_size', 'thing_wrap'].sort());
  // Named in a string or a destructuring counts the same as a call.
  assert.ok(reachableIcedExports(LOADER, wordsOf(["const { never } = x; x['color']"])).has('thing_never'));
  assert.ok(reachableIcedExports(LOADER, wordsOf(["x['color']"])).has('other_color'));
  // What no source names is left out; a constructor counts as named by its class's export.
  const none = reachableIcedExports(LOADER, wordsOf(['nothing here']));
  assert.not.ok(none.has('thing_never') || none.has('unused_export') || none.has('other_color'));
  assert.ok(none.has('thing_new'));
});

test('a computed wasm[...] call cannot be followed: the build stops', () => {
  assert.throws(() => reachableIcedExports('let wasm; function f(n) { return wasm[n](); }', wordsOf(['f'])), /computed name/);
});

test("the Code enum keeps the names the sources write, none of its reverse entries; a computed read stops the build", () => {
  const loader = `module.exports.Other = Object.freeze({ A: 0, "0": "A" });\nmodule.exports.Code = Object.freeze({ INVALID:0,"0":"INVALID",Syscall:870,"870":"Syscall",Retnq:396,"396":"Retnq", });\nmodule.exports.After = 1;\n`;
  const sources = ['if (instr.code === Code.Syscall) return;'];
  const { text, kept, total } = trimCodeEnum(loader, wordsOf(sources), sources);
  assert.is(kept, 1);
  assert.is(total, 3);
  const exports: Record<string, unknown> = {};
  new Function('module', text)({ exports });
  assert.equal(exports.Code, { Syscall: 870 });
  assert.equal(exports.Other, { A: 0, 0: 'A' });
  assert.is(exports.After, 1);
  for (const source of ['Code[instr.code]', 'Object.keys(Code)', "'Syscall' in Code"]) {
    assert.throws(() => trimCodeEnum(loader, wordsOf([source]), [source]), /computed name/, source);
  }
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
