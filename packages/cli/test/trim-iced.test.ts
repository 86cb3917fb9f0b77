// scripts/trim-iced.ts: which of iced-x86's wasm exports the bundle can reach, and the module
// rewritten with only those.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkCodeReads, keepFunctionExports, reachableIcedExports, trimCodeEnum, wasmExports, wasmSections, wordsOf } from '../scripts/trim-iced.js';

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
  // toString, toJSON and valueOf are called without being named: always kept.
  assert.ok(reachableIcedExports('let wasm; class T { toString() { return wasm.t_str(); } }', wordsOf([''])).has('t_str'));
  // A field's initializer runs with the class or the constructor: kept.
  assert.ok(reachableIcedExports('let wasm; class T { static s = wasm.t_static(); f = wasm.t_field(); }', wordsOf([''])).has('t_static'));
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

test('the Code enum keeps the names the sources write, none of its reverse entries', () => {
  const loader = `module.exports.Other = Object.freeze({ A: 0, "0": "A" });\nmodule.exports.Code = Object.freeze({ INVALID:0,"0":"INVALID",Syscall:870,"870":"Syscall",Retnq:396,"396":"Retnq", });\nmodule.exports.After = 1;\n`;
  const { text, kept, total } = trimCodeEnum(loader, wordsOf(['if (instr.code === Code.Syscall) return;']));
  assert.is(kept, 1);
  assert.is(total, 3);
  const exports: Record<string, unknown> = {};
  new Function('module', text)({ exports });
  assert.equal(exports.Code, { Syscall: 870 });
  assert.equal(exports.Other, { A: 0, 0: 'A' });
  assert.is(exports.After, 1);
});

test('Code read other than as Code.<name> stops the build; written-out reads, imports, destructuring and types pass', () => {
  const ok = [
    "const { Code, FlowControl } = iced; if (c === Code.Syscall) f(Code.INVALID);",
    "import { Code } from './iced.js'; const x: number = Code.Retnq;",
    "if (instr.code === iced.Code.Int3) {}",
    "type T = typeof Code; function f(c: iced.Code) {}",
    "// Code[n] in a comment, and 'Object.keys(Code)' in a string",
  ];
  for (const text of ok) checkCodeReads([{ path: 'ok.ts', text }]);
  const bad = [
    'const name = Code[instr.code];',
    'const name = (iced.Code as unknown as Record<number, string>)[c];',
    'Object.keys(iced.Code);',
    "if ('Syscall' in Code) {}",
    'const all = { ...Code };',
    'Object.assign(x, Code);',
    'const C = iced.Code;',
    'const { Code: C } = iced;',
    'const { ...rest } = iced, o = { Code };',
    'f(Code);',
  ];
  for (const text of bad) assert.throws(() => checkCodeReads([{ path: 'bad.ts', text }]), /bad\.ts:1:\d+: iced-x86's Code enum used other than/, text);
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
  const before = wasmSections(icedWasm);
  const after2 = wasmSections(wasm);
  assert.equal(after2.map((x) => x.id), before.map((x) => x.id));
  before.forEach((section, i) => {
    if (section.id !== 7) assert.ok(Buffer.from(section.bytes).equals(after2[i]!.bytes), `section ${i} (id ${section.id}) unchanged`);
  });
  assert.throws(() => keepFunctionExports(icedWasm, new Set(['no_such_export'])), /no_such_export/);
});

test.run();
