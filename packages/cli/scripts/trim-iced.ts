/**
 * iced-x86's wasm exports 761 functions, and V8 makes a JavaScript function and an own property
 * of the exports object for each one when the module is instantiated: 5-6 ms of every one-shot
 * rewrite, for the 144 the CLI can reach. The bundle (scripts/bundle.ts) therefore loads a copy of
 * the wasm whose export section lists only those; the code is unchanged, and what is not exported
 * is never compiled (V8 compiles wasm functions lazily).
 *
 * Which exports the CLI can reach, over-approximated: iced-x86's loader calls the wasm as
 * `wasm.<export>(...)` from its top-level code, its functions and its classes' members. Its
 * top-level statements always run. A function or member is reachable when its name appears as a
 * word anywhere in the bundle's other sources (ours, zod, yaml: any call, destructuring or string)
 * or in a reachable part of the loader, a constructor when its class's name does; the exports kept
 * are the `wasm.<name>` of every reachable part. Calls reach iced's objects by name only (the
 * sources never index one with a computed key), so a member no source names is never called.
 */
import ts from 'typescript';

/** Every word (identifier-like token, in code, strings or comments alike) of some sources. */
export function wordsOf(sources: readonly string[]): Set<string> {
  const words = new Set<string>();
  for (const text of sources) for (const m of text.matchAll(/[A-Za-z_$][\w$]*/g)) words.add(m[0]);
  return words;
}

/** The loader's source, parsed (both analyses below read it). */
export function parseLoader(loader: string): ts.SourceFile {
  return ts.createSourceFile('iced_x86.js', loader, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
}

/**
 * Members a program calls without naming them: String(x) and template strings call toString,
 * JSON.stringify calls toJSON, arithmetic and comparisons call valueOf.
 */
const IMPLICITLY_CALLED = ['toString', 'toJSON', 'valueOf'];

/** The wasm exports the loader's reachable code calls, given the loader and the words of every other source of the bundle. */
export function reachableIcedExports(loader: string | ts.SourceFile, otherWords: ReadonlySet<string>): Set<string> {
  const file = typeof loader === 'string' ? parseLoader(loader) : loader;
  const parts: { name: string; node: ts.Node }[] = [];
  const always: ts.Node[] = [];
  for (const statement of file.statements) {
    if (ts.isClassDeclaration(statement) && statement.name !== undefined) {
      for (const member of statement.members) {
        if (ts.isConstructorDeclaration(member)) parts.push({ name: statement.name.text, node: member });
        // A field's initializer runs when the class is defined (static) or constructed: kept.
        else if (ts.isPropertyDeclaration(member) || ts.isClassStaticBlockDeclaration(member)) always.push(member);
        else if (member.name !== undefined && (ts.isIdentifier(member.name) || ts.isStringLiteral(member.name))) parts.push({ name: member.name.text, node: member });
        else always.push(member); // a computed name: kept, whatever it is
      }
    } else if (ts.isFunctionDeclaration(statement) && statement.name !== undefined) {
      parts.push({ name: statement.name.text, node: statement });
    } else {
      always.push(statement);
    }
  }

  const names = new Set<string>([...otherWords, ...IMPLICITLY_CALLED]);
  const addNames = (node: ts.Node): void => {
    const visit = (n: ts.Node): void => {
      if (ts.isIdentifier(n) || ts.isPrivateIdentifier(n) || ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) names.add(n.text);
      ts.forEachChild(n, visit);
    };
    visit(node);
  };
  for (const node of always) addNames(node);
  const reached = new Set<(typeof parts)[number]>();
  for (let grew = true; grew;) {
    grew = false;
    for (const part of parts) {
      if (reached.has(part) || !names.has(part.name)) continue;
      reached.add(part);
      addNames(part.node);
      grew = true;
    }
  }

  const exports = new Set<string>();
  const collect = (node: ts.Node): void => {
    const visit = (n: ts.Node): void => {
      if (ts.isPropertyAccessExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'wasm') exports.add(n.name.text);
      if (ts.isElementAccessExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'wasm') {
        throw new Error('iced-x86 indexes its wasm exports with a computed name: scripts/trim-iced.ts cannot tell which it uses');
      }
      ts.forEachChild(n, visit);
    };
    visit(node);
  };
  for (const node of always) collect(node);
  for (const part of reached) collect(part.node);
  return exports;
}

/**
 * The loader with its `Code` enum cut to the names the other sources use: iced-x86's Code has
 * 4,936 names and as many reverse entries (number -> name), 315 kB of one object literal whose
 * boilerplate was a fifth of the code cache (~3 ms of every start to read back and build), and the
 * CLI reads ~20 of them, as `Code.<name>`. Reverse entries go. Sound while every read is
 * `Code.<name>` with the name written out: {@link checkCodeReads} stops the build otherwise.
 */
export function trimCodeEnum(loader: string | ts.SourceFile, otherWords: ReadonlySet<string>): { text: string; kept: number; total: number } {
  const file = typeof loader === 'string' ? parseLoader(loader) : loader;
  const text = file.text;
  for (const statement of file.statements) {
    if (!ts.isExpressionStatement(statement) || !ts.isBinaryExpression(statement.expression)) continue;
    const { left, right } = statement.expression;
    if (!ts.isPropertyAccessExpression(left) || left.name.text !== 'Code' || left.expression.getText(file) !== 'module.exports') continue;
    const literal = ts.isCallExpression(right) && right.expression.getText(file) === 'Object.freeze' ? right.arguments[0] : undefined;
    if (literal === undefined || !ts.isObjectLiteralExpression(literal)) throw new Error("iced-x86's Code enum is no longer an Object.freeze({...}): update scripts/trim-iced.ts");
    const kept: string[] = [];
    let total = 0;
    for (const p of literal.properties) {
      if (!ts.isPropertyAssignment(p) || !ts.isNumericLiteral(p.initializer)) continue; // a reverse entry
      if (!ts.isIdentifier(p.name)) throw new Error(`iced-x86's Code enum has an entry named ${p.name.getText(file)}: update scripts/trim-iced.ts`);
      total++;
      if (otherWords.has(p.name.text)) kept.push(`${p.name.text}: ${p.initializer.text}`);
    }
    return { text: `${text.slice(0, statement.getStart(file))}module.exports.Code = Object.freeze({ ${kept.join(', ')} });${text.slice(statement.end)}`, kept: kept.length, total };
  }
  throw new Error("iced-x86's loader no longer defines module.exports.Code: update scripts/trim-iced.ts");
}

/**
 * Throws unless every mention of an identifier `Code` in `sources` (ours: TypeScript or
 * JavaScript) is a written-out read, `Code.<name>` or `<x>.Code.<name>`, a plain import or
 * destructuring (`{ Code }`, read the same way wherever it is used), or a type. An index, a rename,
 * a spread, `Object.keys(Code)`, `in Code` or passing it along would read names the cut enum does
 * not have, and get undefined instead of an error.
 */
export function checkCodeReads(sources: readonly { path: string; text: string }[]): void {
  for (const { path, text } of sources) {
    const kind = /\.tsx?$/.test(path) ? ts.ScriptKind.TS : ts.ScriptKind.JS;
    const file = ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, true, kind);
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node) && node.text === 'Code' && !isWrittenOutRead(node)) {
        const { line, character } = file.getLineAndCharacterOfPosition(node.getStart(file));
        throw new Error(`${path}:${line + 1}:${character + 1}: iced-x86's Code enum used other than as Code.<name> (\`${node.parent.getText(file).slice(0, 60)}\`): scripts/trim-iced.ts cannot cut it`);
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
}

function isWrittenOutRead(node: ts.Identifier): boolean {
  const parent = node.parent;
  // Code.<name>
  if (ts.isPropertyAccessExpression(parent) && parent.expression === node) return true;
  // <x>.Code.<name>
  if (ts.isPropertyAccessExpression(parent) && parent.name === node) return ts.isPropertyAccessExpression(parent.parent) && parent.parent.expression === parent;
  // { Code } = iced, import { Code }, export { Code }: the same name, checked where it is read.
  if ((ts.isBindingElement(parent) || ts.isImportSpecifier(parent) || ts.isExportSpecifier(parent)) && parent.name === node && parent.propertyName === undefined) {
    return !(ts.isBindingElement(parent) && parent.dotDotDotToken !== undefined);
  }
  if (ts.isShorthandPropertyAssignment(parent)) return false; // { Code } built into an object
  // A type: erased.
  for (let n: ts.Node = parent; !ts.isSourceFile(n); n = n.parent) {
    if (ts.isTypeNode(n) || ts.isTypeAliasDeclaration(n) || ts.isInterfaceDeclaration(n) || ts.isImportTypeNode(n)) return true;
    if (ts.isExpression(n) || ts.isStatement(n)) break;
  }
  return false;
}

const EXPORT_SECTION = 7;
const EXTERNAL_FUNCTION = 0;

/**
 * The module with only the function exports named in `keep` (tables, memories and globals stay);
 * every other byte is the same. Throws when a name in `keep` is not a function export.
 */
export function keepFunctionExports(wasm: Uint8Array, keep: ReadonlySet<string>): { wasm: Uint8Array; kept: number; total: number } {
  const r = new Reader(wasm);
  if (wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) throw new Error('not a wasm module');
  r.at = 8;
  const out: Uint8Array[] = [wasm.subarray(0, 8)];
  let kept = 0;
  let total = 0;
  /** Every export kept: the functions asked for and all others (memory, tables, globals). */
  const found = new Set<string>();
  while (r.at < wasm.length) {
    const start = r.at;
    const id = r.byte();
    const size = r.uleb();
    const end = r.at + size;
    if (id !== EXPORT_SECTION) {
      out.push(wasm.subarray(start, end));
      r.at = end;
      continue;
    }
    const count = r.uleb();
    const entries: Uint8Array[] = [];
    let entryCount = 0;
    for (let i = 0; i < count; i++) {
      const entryStart = r.at;
      const nameLength = r.uleb();
      const name = new TextDecoder().decode(wasm.subarray(r.at, r.at + nameLength));
      r.at += nameLength;
      const kind = r.byte();
      r.uleb(); // index
      if (kind === EXTERNAL_FUNCTION) {
        total++;
        if (!keep.has(name)) continue;
        kept++;
      }
      found.add(name);
      entries.push(wasm.subarray(entryStart, r.at));
      entryCount++;
    }
    if (r.at !== end) throw new Error('the export section does not end where its size says');
    const body = Buffer.concat([Uint8Array.from(uleb(entryCount)), ...entries]);
    out.push(Uint8Array.from([EXPORT_SECTION, ...uleb(body.length)]), body);
  }
  const missing = [...keep].filter((name) => !found.has(name));
  if (missing.length > 0) throw new Error(`iced-x86's loader calls wasm exports the module does not have: ${missing.join(', ')}`);
  return { wasm: Buffer.concat(out), kept, total };
}

// The part of the WebAssembly global this file uses (the project's TypeScript libs do not declare it).
declare const WebAssembly: { Module: { new (bytes: Uint8Array): object; exports(module: object): { name: string; kind: string }[] } };

/** A module's exports, as V8 reads them; throws if the module does not validate. */
export function wasmExports(wasm: Uint8Array): { name: string; kind: string }[] {
  return WebAssembly.Module.exports(new WebAssembly.Module(wasm));
}

/** A module's sections in order: id and the bytes of the whole section (id and size included). */
export function wasmSections(wasm: Uint8Array): { id: number; bytes: Uint8Array }[] {
  const r = new Reader(wasm);
  r.at = 8;
  const sections: { id: number; bytes: Uint8Array }[] = [];
  while (r.at < wasm.length) {
    const start = r.at;
    const id = r.byte();
    const size = r.uleb();
    r.at += size;
    sections.push({ id, bytes: wasm.subarray(start, r.at) });
  }
  return sections;
}

function uleb(value: number): number[] {
  const bytes: number[] = [];
  do {
    let b = value & 0x7f;
    value >>>= 7;
    if (value !== 0) b |= 0x80;
    bytes.push(b);
  } while (value !== 0);
  return bytes;
}

class Reader {
  at = 0;
  constructor(private readonly bytes: Uint8Array) {}
  byte(): number {
    if (this.at >= this.bytes.length) throw new Error('wasm module truncated');
    return this.bytes[this.at++]!;
  }
  uleb(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  }
}
