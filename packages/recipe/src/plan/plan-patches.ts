/**
 * planPatches: sites + recipe -> PatchPlan. Decides each site, emits the added code (hooks,
 * stubs, trampolines) with @libos/encoder at the addresses elfkit's planLayout gives, encodes
 * every site's new bytes, and checks the result before returning it.
 */
import { createHash } from 'node:crypto';
import { cfiRowAt, planLayout, type ElfFile } from '@libos/elfkit';
import { Assembler, type Label, type Target, fs, gs, qword, rip, rcx } from '@libos/encoder';
import { emitTrapRuntime, TRAP_STATE_SIZE, type TrapSite } from '../compile/trap-runtime.js';
import { DisplacementFinder, emitMoved } from '../compile/displace.js';
import { FrameInfo, fromCfiRow, type FrameRow } from '../compile/debug-frame.js';
import type { Entry, Recipe, Site } from '../model.js';
import type { FunctionAnalysis } from '../analyze/analyze-function.js';
import { emitCHandlerBridge, emitPassthroughHook, emitTraceRoutines } from '../compile/hooks.js';
import { emitNoteStub, emitStub, emitStubCopy, isRspRow, stubIsFrameless, stubName, type RspFrameRow, type StubCall, type StubShape } from '../compile/stubs.js';
import { entryEffects, opaqueEntry } from '../analyze/entry-effects.js';
import { isGoBinary } from '../analyze/go-binary.js';
import { releaseSharedDecoders } from '../analyze/iced.js';
import { emitTrampoline, encodeSitePatch, nativeLowByteTable, needsTrampoline, NR_CLONE, NR_CLONE3, NR_VFORK } from '../compile/site-code.js';
import { decideSite, variantOrder, type DecideContext, type SiteDecision } from './choose-variant.js';
import { checkPlan } from './check-plan.js';
import { PlanError } from './plan-errors.js';
import { PLAN_SCHEMA, type Patch, type PatchPlan, type PlanRelocation, type PlanSegment, type PlanSymbol, type Refusal } from './plan-types.js';
import { resolveHandler, type ResolvedHandler } from './handler-entry.js';
import { alignUp } from '../align.js';
import { findStartupHook, type StartupHook } from './startup-hook.js';

export interface PlanOptions {
  /** Overrides the recipe's entry (the CLI's --entry). */
  entry?: Entry;
  /** C compiler for a handler source; default $CC or cc. */
  cc?: string;
}

export interface PlanResult {
  plan: PatchPlan;
  warnings: string[];
}

const TEXT = '.libos.text';
/** Any rsp-based row: a stub copy's length does not depend on its rows. */
const PROBE_ROW: RspFrameRow = { cfa: { register: 7, offset: 8 }, registers: new Map() };
const DATA = '.libos.data';

/** Compiles a recipe and the sites found for it into a checked PatchPlan. */
export async function planPatches(elf: ElfFile, recipe: Recipe, sitesIn: readonly Site[] | { sites: readonly Site[]; reported?: readonly Site[]; analyses?: Map<bigint, FunctionAnalysis> }, options: PlanOptions = {}): Promise<PlanResult> {
  const entry = options.entry ?? recipe.entry;
  const warnings: string[] = [];
  const sites = [...('sites' in sitesIn ? sitesIn.sites : sitesIn)].sort((x, y) => (x.va < y.va ? -1 : x.va > y.va ? 1 : 0));
  const kind = elf.kind;
  const startup = findStartupHook(elf);
  const ctx: DecideContext = {
    elf,
    recipe,
    absoluteOk: kind === 'exec' || kind === 'static',
    entryOwnsAbi: entry.kind === 'slot' || entry.kind === 'pointer',
    cHandler: entry.kind === 'handler',
    ...(isGoBinary(elf) ? { notSysV: 'a Go binary (its register ABI passes arguments and results in rdi, rsi, r8-r11 as well)' } : {}),
    trapAvailable: trapAvailability(startup, entry),
    displacer: new DisplacementFinder(elf, 'sites' in sitesIn ? sitesIn.analyses : undefined),
    variants: variantOrder(recipe),
  };
  if (kind === 'relocatable') throw new PlanError('PLAN_UNSUPPORTED_FILE', 'an object file (.o) cannot be rewritten: link it first, then rewrite the result');
  let decisions: SiteDecision[];
  try {
    decisions = decideAll(ctx, sites);
  } finally {
    // The after-site analyses share one decoder per function; the plan holds on to neither it nor the file.
    releaseSharedDecoders();
  }
  if (kind === 'shared' && decisions.some((d) => d.form === 'trap')) {
    warnings.push('trapped sites in a shared library are caught only once its initializer has run: code the dynamic loader runs earlier (libc\'s __libc_early_init) dies on a trap there');
  }
  const handler = entry.kind === 'handler' ? await resolveHandler(entry, options, ctx.absoluteOk) : undefined;
  const entryTargets = resolveEntryTargets(elf, entry);
  // A handler built -mgeneral-regs-only touches no vector register: nothing to save. One that
  // does gets xsave64/xrstor64 of every enabled state component around the call.
  const saveVectors = handler !== undefined && handler.usesVectorRegisters && recipe.abi.vectorState === 'preserve';
  if (saveVectors) warnings.push(`the handler uses vector registers (${handler!.vectorUse ?? '?'}): its bridge saves the vector state with xsave64 (slower; build it with -mgeneral-regs-only to avoid this)`);

  const reported = 'sites' in sitesIn ? sitesIn.reported?.length ?? 0 : 0;
  if (!decisions.some((d) => d.form !== undefined)) {
    // Nothing to patch: no code to add either.
    const plan = assemblePlan(elf, recipe, entry, decisions, { text: new Uint8Array(0), data: new Uint8Array(0), dataMemSize: 0, siteTargets: new Map(), symbols: [], debugFrame: new Uint8Array(0), relocations: [] }, 0n, 0n, undefined, reported);
    return { plan, warnings };
  }
  // Writable data: the handler's data and bss, then the trap runtime's state.
  const handlerData = handler === undefined ? 0 : alignUp(handler.dataMemSize, 16);
  const dataNeed = handlerData + (decisions.some((d) => d.form === 'trap') ? TRAP_STATE_SIZE : 0);
  // The code depends on where it goes and its size on little else: lay out, encode, and lay out
  // again until the sizes hold. A generous first estimate (hooks ~2 KiB, ~160 bytes a site) makes
  // one round the rule.
  let sizes = { text: 4096 + 160 * decisions.length + (handler?.textSize ?? 0), data: dataNeed };
  for (let round = 0; round < 4; round++) {
    const requests: { name: string; size: number; flags: 'rx' | 'rw' }[] = [{ name: TEXT, size: sizes.text, flags: 'rx' }];
    if (sizes.data > 0) requests.push({ name: DATA, size: sizes.data, flags: 'rw' as const });
    const placement = planLayout(elf, requests);
    const textVa = placement[0]!.va;
    const dataVa = placement[1]?.va ?? 0n;
    const built = buildCode({
      elf, decisions, entry, targets: entryTargets, textVa,
      handler: handler?.link(textVa, dataVa),
      saveVectors,
      trapInstruction: recipe.trampoline.trapInstruction,
      originalEntry: typeof startup === 'string' ? elf.header.entry : startup.originalVa,
      trapStateVa: dataVa + BigInt(handlerData),
      dataMemSize: dataNeed,
    });
    const need = { text: built.text.length, data: dataNeed };
    if (need.text <= sizes.text && need.data <= sizes.data) {
      const plan = assemblePlan(elf, recipe, entry, decisions, built, textVa, dataVa, typeof startup === 'string' ? undefined : startup, reported);
      checkPlan(elf, plan);
      return { plan, warnings };
    }
    sizes = { text: Math.max(need.text, sizes.text * 2), data: need.data };
  }
  throw new PlanError('PLAN_LAYOUT', 'the added code did not settle to a stable size');
}

/** How the trap runtime's start stub gets to run: a new entry point, or a redirected initializer. */
function startupFields(elf: ElfFile, startup: StartupHook | undefined, stubVa: bigint): Pick<PatchPlan, 'entryPoint' | 'startupPatch'> {
  if (startup === undefined || startup.kind === 'entry' || startup.offset === undefined) return { entryPoint: stubVa };
  const after = new Uint8Array(8);
  new DataView(after.buffer).setBigUint64(0, stubVa, true);
  return {
    startupPatch: {
      kind: startup.kind,
      offset: startup.offset,
      before: elf.bytes.slice(startup.offset, startup.offset + 8),
      after,
      originalVa: startup.originalVa,
      reason: `the trap runtime's start stub runs first: ${startup.kind} now points at it, and it goes on to 0x${startup.originalVa.toString(16)}`,
    },
  };
}

/**
 * Decides every site in address order. A window that would reach back over the previous site's
 * patch is decided again without it (other neighbours, or the next variant); two patches never
 * share a byte.
 */
function decideAll(ctx: DecideContext, sites: readonly Site[]): SiteDecision[] {
  let claimedEnd = -1n;
  return sites.map((site, i) => {
    let d = decideSite(ctx, site, i);
    if (d.form !== undefined && windowOf(d).start < claimedEnd) d = decideSite(ctx, site, i, claimedEnd);
    if (d.form !== undefined && windowOf(d).start < claimedEnd) {
      const { variant: _v, form: _f, displacement: _d, ...rest } = d;
      d = { ...rest, reason: `${site.rule}; refused: every window overlaps the previous site's patch` };
    }
    if (d.form !== undefined) claimedEnd = windowOf(d).end;
    return d;
  });
}

function windowOf(d: SiteDecision): { start: bigint; end: bigint } {
  return {
    start: d.displacement?.windowStart ?? d.site.va,
    end: d.displacement?.windowEnd ?? d.site.va + BigInt(d.site.room),
  };
}

/** The unwind row at an address, or undefined where the file's call-frame information is missing or unreadable. */
function safeCfiRow(elf: ElfFile, va: bigint): ReturnType<typeof cfiRowAt> {
  try {
    return cfiRowAt(elf, va);
  } catch {
    return undefined;
  }
}

function trapAvailability(startup: StartupHook | string, entry: Entry): string | true {
  if (entry.kind === 'slot' || entry.kind === 'pointer') return `a trapped call cannot reach a ${entry.kind} entry, which expects the call-site convention`;
  if (typeof startup === 'string') return startup;
  return true;
}

interface EntryTargets {
  /** A hook in the binary itself (symbol). */
  hookVa?: bigint;
  /** An absolute hook address (address). */
  absoluteHook?: bigint;
  /** The jump that replaces the stub for slot and pointer entries. */
  jump?: { segment: 'fs' | 'gs'; offset: number } | { pointerVa: bigint };
}

function resolveEntryTargets(elf: ElfFile, entry: Entry): EntryTargets {
  switch (entry.kind) {
    case 'symbol':
      // A symbol the file does not define is left to whoever loads the plan: a relocation.
      return { hookVa: findSymbolVa(elf, entry.name, true) };
    case 'address':
      return { absoluteHook: entry.va };
    case 'slot':
      return { jump: { segment: entry.segment, offset: entry.offset } };
    case 'pointer':
      return { jump: { pointerVa: findSymbolVa(elf, entry.symbol) } };
    default:
      return {};
  }
}

function findSymbolVa(elf: ElfFile, name: string, external: true): bigint | undefined;
function findSymbolVa(elf: ElfFile, name: string): bigint;
function findSymbolVa(elf: ElfFile, name: string, external = false): bigint | undefined {
  for (const table of [elf.symbols, elf.dynamicSymbols]) {
    const hit = table.find((s) => s.name === name && s.section !== 0 && s.value !== 0n);
    if (hit !== undefined) return hit.value;
  }
  if (external) return undefined;
  throw new PlanError('PLAN_SYMBOL_NOT_FOUND', `the entry symbol ${name} is not defined in the file (.symtab or .dynsym)`);
}

interface BuiltCode {
  entryPoint?: bigint;
  relocations: PlanRelocation[];
  debugFrame: Uint8Array;
  text: Uint8Array;
  data: Uint8Array;
  dataMemSize: number;
  /** Per decision index: where the site's patch jumps. */
  siteTargets: Map<number, { target: bigint; trampolineVa?: bigint }>;
  symbols: PlanSymbol[];
  /** What decoding the entry told the fast stubs (see analyze/entry-effects.ts). */
  entryAnalysis?: string;
}

/** What the added code is built from, at one layout. */
interface BuildInput {
  elf: ElfFile;
  decisions: SiteDecision[];
  entry: Entry;
  targets: EntryTargets;
  textVa: bigint;
  handler: ReturnType<ResolvedHandler['link']> | undefined;
  saveVectors: boolean;
  trapInstruction: 'ud2' | 'int3';
  /** Where the trap runtime's start stub goes on to: the entry point or the library's initializer. */
  originalEntry: bigint;
  trapStateVa: bigint;
  dataMemSize: number;
}

function buildCode(input: BuildInput): BuiltCode {
  const { elf, decisions, entry, targets, textVa, handler, saveVectors, trapInstruction, originalEntry, trapStateVa, dataMemSize } = input;
  const a = new Assembler();
  const frames = new FrameInfo();
  const named: { label: Label; name: string; type: 'func' | 'object' }[] = [];
  const mark = (label: Label, name: string, type: 'func' | 'object' = 'func') => named.push({ label, name, type });
  const symbols: PlanSymbol[] = [];
  if (handler !== undefined) {
    a.bytes(handler.text);
    a.align(16);
    for (const s of handler.symbols) symbols.push(s); // not push(...): 200,000 symbols overflowed the stack
  }
  const patched = decisions.filter((d) => d.form !== undefined);
  const needsNote = entry.kind === 'trace' && patched.some((d) => d.routing.kind !== 'none' || d.form === 'trap');

  // The shapes in use, and whether anything calls the entry as a hook: the seed's stub and the
  // trap runtime do; the fast stub runs the entry its own way (StubCall).
  const shapes = new Map<string, StubShape>();
  for (const d of patched) if (d.form !== 'trap') shapes.set(stubName(d.shape), d.shape);
  const hookCalled = patched.some((d) => d.form === 'trap') || [...shapes.values()].some((s) => s.kind === 'seed');

  let hook: Target | undefined;
  let fastCall: StubCall | undefined;
  let note: Label | undefined;
  switch (entry.kind) {
    case 'passthrough':
      fastCall = { kind: 'syscall' };
      if (hookCalled) {
        hook = emitPassthroughHook(a, 'libos_entry_passthrough', frames);
        mark(hook as Label, 'libos_entry_passthrough');
      }
      break;
    case 'trace': {
      const t = emitTraceRoutines(a, frames);
      hook = t.hook;
      note = t.note;
      mark(t.hook, 'libos_trace_hook');
      mark(t.note, 'libos_trace_note');
      fastCall = { kind: 'call', target: hook, effects: opaqueEntry('the trace hook') };
      break;
    }
    case 'handler':
      fastCall = { kind: 'c-handler', handler: handler!.entryVa, saveVectors };
      if (hookCalled) {
        hook = emitCHandlerBridge(a, 'libos_handler_bridge', handler!.entryVa, saveVectors, frames);
        mark(hook as Label, 'libos_handler_bridge');
      }
      break;
    case 'symbol': {
      hook = targets.hookVa ?? a.symbol(entry.name);
      const effects = targets.hookVa !== undefined ? entryEffects(elf, targets.hookVa) : opaqueEntry(`${entry.name} is not in the file`);
      fastCall = effects.inline !== undefined ? { kind: 'inline', body: effects.inline, effects } : { kind: 'call', target: hook, effects };
      break;
    }
    case 'address': {
      const l = a.label('libos_entry_address');
      a.bind(l);
      a.jmp(qword(rip, 0));
      a.qword(targets.absoluteHook!);
      hook = l;
      mark(l, 'libos_entry_address');
      fastCall = { kind: 'call', target: hook, effects: opaqueEntry('an address outside the file') };
      break;
    }
    case 'slot':
    case 'pointer':
      break;
  }

  // One stub per shape in use, in a fixed order.
  const stubs = new Map<string, Label>();
  if (hook !== undefined || fastCall !== undefined) {
    for (const name of [...shapes.keys()].sort()) {
      a.align(16);
      const shape = shapes.get(name)!;
      const l = emitStub(a, shape, shape.kind === 'seed' ? { kind: 'call', target: hook!, effects: opaqueEntry('the seed stub calls its entry') } : fastCall!, frames);
      stubs.set(name, l);
      mark(l, name);
    }
  }
  let noteStub: Label | undefined;
  if (needsNote && note !== undefined) {
    a.align(16);
    noteStub = emitNoteStub(a, note, frames);
    mark(noteStub, 'libos_note_stub');
  }

  // A trampoline that would jump to the fast stub runs a copy of it instead: one taken branch
  // less. A stub that never touches the stack (an entry copied in, r11 not needed) is copied
  // anywhere; one that moves rsp only where the function's frame is rsp-based (its rows then
  // follow that frame) and when it is short. Lengths are fixed (no relaxable branch), measured
  // once per shape.
  const MAX_STACK_COPY = 128;
  const copyLengths = new Map<string, number | undefined>();
  const stubCopyLength = (shape: StubShape): number | undefined => {
    const name = stubName(shape);
    if (!copyLengths.has(name)) {
      let length: number | undefined;
      if (fastCall !== undefined && shape.kind === 'fast') {
        const probe = new Assembler();
        // A label of the real assembler cannot be used here: any address gives the same call rel32.
        const call: StubCall = fastCall.kind === 'call' ? { ...fastCall, target: textVa } : fastCall;
        emitStubCopy(probe, shape, call, textVa, { row: PROBE_ROW, frames: new FrameInfo() });
        length = probe.encode({ va: textVa }).bytes.length;
      }
      copyLengths.set(name, length);
    }
    return copyLengths.get(name);
  };
  const copyFor = (d: SiteDecision, row: FrameRow | undefined): { length: number; base?: RspFrameRow } | undefined => {
    if (targets.jump !== undefined || fastCall === undefined || d.shape.kind !== 'fast') return undefined;
    const length = stubCopyLength(d.shape);
    if (length === undefined) return undefined;
    if (stubIsFrameless(d.shape, fastCall)) return { length };
    return isRspRow(row) && length <= MAX_STACK_COPY ? { length, base: row } : undefined;
  };
  const emitIntercept = (d: SiteDecision, copy: ReturnType<typeof copyFor>, resume: Target) => (asm: Assembler) => {
    const jump = targets.jump;
    if (copy !== undefined) {
      emitStubCopy(asm, d.shape, fastCall!, resume, copy.base !== undefined ? { row: copy.base, frames } : undefined);
    } else if (jump === undefined) {
      asm.jmp(stubs.get(stubName(d.shape))!, { near: true });
    } else if ('segment' in jump) {
      asm.jmp(qword({ segment: jump.segment === 'gs' ? gs : fs, disp: jump.offset }));
    } else {
      asm.jmp(qword(rip(jump.pointerVa)));
    }
  };

  // The trampolines' low-byte tables (site-code.ts), one per set of numbers checked, emitted after them.
  const lowByteTables = new Map<string, { nrs: readonly number[]; label: Label }>();
  const lowByteTable = (nrs: readonly number[]): Label => {
    const key = nrs.join(',');
    let t = lowByteTables.get(key);
    if (t === undefined) {
      t = { nrs, label: a.label() };
      lowByteTables.set(key, t);
    }
    return t.label;
  };

  // A trampoline runs on its function's stack: it unwinds with that function's rows. A site's
  // window often starts at the site, so the same row is asked for twice; rows are never changed
  // once recorded (stubs.ts), so one object serves both.
  const rows = new Map<bigint, FrameRow | undefined>();
  const rowAt = (va: bigint): FrameRow | undefined => {
    if (rows.has(va)) return rows.get(va);
    const cfi = safeCfiRow(elf, va);
    const row = cfi === undefined ? undefined : fromCfiRow(cfi);
    rows.set(va, row);
    return row;
  };

  // Per-site trampolines and hops.
  const trapSites: TrapSite[] = [];
  const siteLabels = new Map<number, { target: Label; trampoline?: Label }>();
  for (const d of patched) {
    const rcxSet = d.form === 'rel32' || d.form === 'abs64' || d.form === 'abs64-hop';
    const moved = d.displacement;
    const resumeInside = moved !== undefined ? a.label() : undefined;
    const siteRow = rowAt(d.site.va);
    const copy = copyFor(d, siteRow);
    const resume = resumeInside ?? d.resumeVa;
    const spec = {
      name: `libos_site_${d.site.va.toString(16)}`,
      resumeVa: resume,
      ...(moved !== undefined ? {
        prologue: (asm: Assembler) => {
          for (const m of moved.before) emitMoved(asm, m);
          if (siteRow !== undefined) frames.set(asm, siteRow);
        },
        prologueLength: moved.before.reduce((n, m) => n + m.bytes.length, 0),
      } : {}),
      rcxSet,
      routing: d.routing,
      emitIntercept: emitIntercept(d, copy, resume),
      ...(copy !== undefined ? { emitRareIntercept: emitIntercept(d, undefined, resume) } : {}),
      interceptLength: copy?.length ?? (targets.jump === undefined ? 5 : 'segment' in targets.jump ? 8 : 6),
      ...(noteStub !== undefined ? { noteStub } : {}),
      lowByteTable,
    };
    let target: Label;
    let trampoline: Label | undefined;
    if (d.form === 'trap') {
      const native = a.label(`libos_native_${d.site.va.toString(16)}`);
      a.bind(native);
      a.syscall();
      a.lea(rcx, rip(d.resumeVa));
      a.jmp(d.resumeVa, { near: true });
      mark(native, `libos_native_${d.site.va.toString(16)}`);
      let forkLike: TrapSite['forkLike'];
      if (noteStub !== undefined) {
        const stubFor = (nr: number) => emitTrampoline(a, { ...spec, name: `libos_native_${d.site.va.toString(16)}_${nr}`, rcxSet: false, routing: { kind: 'always', nr } });
        forkLike = { vfork: stubFor(NR_VFORK), clone: stubFor(NR_CLONE), clone3: stubFor(NR_CLONE3) };
      }
      trapSites.push({ siteVa: d.site.va, resumeVa: d.resumeVa, native, ...(forkLike !== undefined ? { forkLike } : {}) });
      continue;
    }
    if (needsTrampoline(spec, targets.jump === undefined)) {
      const entryRow = moved !== undefined ? rowAt(moved.windowStart) : siteRow;
      if (entryRow !== undefined) frames.begin(a, entryRow);
      trampoline = emitTrampoline(a, spec);
      mark(trampoline, spec.name);
      target = trampoline;
      if (moved !== undefined && resumeInside !== undefined) {
        // The moved successors run after the call, then the original code goes on.
        a.bind(resumeInside);
        const afterRow = rowAt(d.site.va + BigInt(d.site.length));
        if (afterRow !== undefined) frames.set(a, afterRow);
        // rcx as `syscall` leaves it: the address after the syscall in the program, not this copy.
        if (d.shape.rcxR11 !== 'clobber') a.lea(rcx, rip(d.site.va + BigInt(d.site.length)));
        for (const m of moved.after) emitMoved(a, m);
        a.jmp(moved.windowEnd, { near: true });
      }
      frames.end(a);
    } else {
      target = stubs.get(stubName(d.shape))!;
    }
    if (d.form === 'abs64-hop') {
      const hop = a.label();
      a.bind(hop);
      a.jmp(qword(rip, 0));
      a.qword(target);
      mark(hop, `libos_hop_${d.site.va.toString(16)}`);
      target = hop;
    }
    siteLabels.set(d.index, { target, ...(trampoline !== undefined ? { trampoline } : {}) });
  }

  for (const [key, t] of lowByteTables) {
    a.align(16);
    a.bind(t.label);
    a.bytes(nativeLowByteTable(t.nrs));
    mark(t.label, `libos_native_low_bytes_${key.replaceAll(',', '_')}`, 'object');
  }

  let trapStart: Label | undefined;
  if (trapSites.length > 0) {
    a.align(16);
    trapStart = emitTrapRuntime(a, trapSites, hook!, trapInstruction, originalEntry, trapStateVa, note);
    mark(trapStart, 'libos_trap_start');
  }

  frames.end(a);
  const encoded = a.encode({ va: textVa });
  const relocations: PlanRelocation[] = encoded.relocations.map((r) => ({
    segment: TEXT, offset: r.offset, type: r.type === 'PC32' ? 'pc32' : 'abs64', symbol: r.symbol, addend: r.addend,
  }));
  const siteTargets = new Map<number, { target: bigint; trampolineVa?: bigint }>();
  for (const [index, l] of siteLabels) {
    siteTargets.set(index, {
      target: encoded.labelVa(l.target),
      ...(l.trampoline !== undefined ? { trampolineVa: encoded.labelVa(l.trampoline) } : {}),
    });
  }
  // Symbol sizes: up to the next named label (or the end of the code).
  const placed = named.map((n) => ({ ...n, va: encoded.labelVa(n.label) })).sort((x, y) => (x.va < y.va ? -1 : x.va > y.va ? 1 : 0));
  const end = textVa + BigInt(encoded.bytes.length);
  placed.forEach((p, i) => {
    const next = placed[i + 1]?.va ?? end;
    symbols.push({ name: p.name, va: p.va, size: Number(next - p.va), type: p.type });
  });
  return {
    ...(trapStart !== undefined ? { entryPoint: encoded.labelVa(trapStart) } : {}),
    debugFrame: frames.build(encoded),
    relocations,
    text: encoded.bytes,
    data: handler?.data ?? new Uint8Array(0),
    dataMemSize,
    siteTargets,
    symbols,
    ...(fastCall !== undefined && 'effects' in fastCall && [...shapes.values()].some((sh) => sh.kind === 'fast') ? { entryAnalysis: fastCall.effects.reason } : {}),
  };
}

function assemblePlan(
  elf: ElfFile, recipe: Recipe, entry: Entry, decisions: SiteDecision[], built: BuiltCode,
  textVa: bigint, dataVa: bigint, startup: StartupHook | undefined, reported: number,
): PatchPlan {
  const patches: Patch[] = [];
  const refused: Refusal[] = [];
  const byVariant: PatchPlan['stats']['byVariant'] = {};
  const relaxations: Record<string, number> = {};
  for (const d of decisions) {
    const site = d.site;
    if (d.form === undefined || d.variant === undefined) {
      refused.push({ site: d.index, va: site.va, rule: site.rule, reason: d.reason });
      continue;
    }
    const t = built.siteTargets.get(d.index);
    const w = d.displacement;
    const window = w !== undefined
      ? { va: w.windowStart, offset: w.windowOffset, room: Number(w.windowEnd - w.windowStart) }
      : { va: site.va, offset: site.offset, room: site.room };
    const after = encodeSitePatch(d.form, window, d.resumeVa, t?.target ?? 0n, recipe.trampoline.trapInstruction);
    const before = elf.bytes.slice(window.offset, window.offset + window.room);
    patches.push({
      site: d.index,
      siteVa: site.va,
      va: window.va,
      offset: window.offset,
      before,
      after,
      variant: d.variant,
      relaxations: d.relaxations,
      reason: d.reason,
      rule: site.rule,
      ...(t?.trampolineVa !== undefined ? { trampolineVa: t.trampolineVa } : {}),
      resumeVa: w !== undefined ? w.windowEnd : d.resumeVa,
      ...(site.syscallNr !== undefined ? { syscallNr: site.syscallNr } : {}),
    });
    byVariant[d.variant] = (byVariant[d.variant] ?? 0) + 1;
    for (const r of d.relaxations) {
      const key = r.replace(/ \(.*$/, '').replace(/:.*$/, '');
      relaxations[key] = (relaxations[key] ?? 0) + 1;
    }
  }
  const segments: PlanSegment[] = built.text.length > 0 ? [{ name: TEXT, va: textVa, flags: 'rx', bytes: built.text, memsz: built.text.length }] : [];
  if (built.dataMemSize > 0) {
    segments.push({ name: DATA, va: dataVa, flags: 'rw', bytes: built.data, memsz: Math.max(built.dataMemSize, built.data.length) });
  }
  const bytesAdded = segments.reduce((n, s) => n + s.bytes.length, 0);
  return {
    schema: PLAN_SCHEMA,
    input: {
      size: elf.bytes.length,
      sha256: createHash('sha256').update(elf.bytes).digest('hex'),
      ...(elf.buildId !== undefined ? { buildId: elf.buildId } : {}),
      kind: elf.kind,
    },
    recipe: { name: recipe.name, source: recipe.source },
    entry,
    ...(built.entryAnalysis !== undefined ? { entryAnalysis: built.entryAnalysis } : {}),
    patches,
    refused,
    segments,
    symbols: built.symbols,
    relocations: built.relocations,
    ...(built.entryPoint !== undefined ? startupFields(elf, startup, built.entryPoint) : {}),
    debugFrame: built.debugFrame,
    stats: {
      sites: decisions.length,
      patched: patches.length,
      refused: refused.length,
      reported,
      byVariant,
      relaxations,
      bytesAdded,
    },
  };
}
