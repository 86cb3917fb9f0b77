import iced from './iced-module.js';
import { EncoderError, type EncoderErrorCode } from './errors.js';
import { fitsSigned } from './encode/immediate.js';
import type { FixedItem, Item } from './encode/item.js';
import { layout } from './encode/layout.js';
import { createLabel, type Label, type Target } from './labels.js';

const { Decoder, DecoderOptions, Encoder, FlowControl, OpKind } = iced;
type IcedInstruction = InstanceType<typeof iced.Instruction>;

/** Why an instruction cannot move. */
export type CannotMoveReason =
  /** A rel32 branch or RIP-relative operand would not reach its target from the new address. */
  | 'target-out-of-range'
  /** A branch or RIP-relative operand points inside the block but not at an instruction start. */
  | 'target-inside-instruction'
  /** jrcxz/loop/loopcc and expansion was turned off. */
  | 'loop-not-expanded'
  /** A relative branch form this mover does not rewrite (xbegin, jmp rel16). */
  | 'unsupported-branch'
  /** The bytes do not decode to a valid instruction. */
  | 'invalid-instruction';

/** What happened to one instruction that moved. */
export type MoveKind =
  /** Position-independent: the same bytes. */
  | 'copied'
  /** RIP-relative memory operand: new disp32 for the same absolute address. */
  | 'rip-relative'
  /** jmp/jcc/call re-encoded to the same target (rel8 or rel32, whichever reaches). */
  | 'branch'
  /** jrcxz/loop/loopcc expanded to `jcc +2; jmp +5; jmp rel32 target`. */
  | 'expanded';

/** A moved instruction. */
export interface MovedInstruction {
  readonly status: 'moved';
  readonly index: number;
  readonly originalVa: bigint;
  readonly originalLength: number;
  readonly kind: MoveKind;
  /** Where it now starts, and its new bytes (empty until the whole block can move). */
  readonly va: bigint;
  readonly offset: number;
  readonly bytes: Uint8Array;
  /** The absolute target of its branch or RIP-relative operand (after retargeting into the block). */
  readonly target: bigint | undefined;
}

/** An instruction that cannot move, with a code and a reason. */
export interface RefusedInstruction {
  readonly status: 'refused';
  readonly index: number;
  readonly originalVa: bigint;
  readonly originalLength: number;
  readonly code: Extract<EncoderErrorCode, 'ENC_CANNOT_MOVE' | 'ENC_INVALID_INSTRUCTION'>;
  readonly reason: CannotMoveReason;
  readonly message: string;
}

export type InstructionMove = MovedInstruction | RefusedInstruction;

/** The result of relocateInstructions. */
export interface RelocationResult {
  /** True when every instruction moved; `bytes` is then the block at `va`. */
  readonly ok: boolean;
  readonly va: bigint;
  readonly bytes: Uint8Array;
  /** One entry per input instruction, in order. */
  readonly instructions: readonly InstructionMove[];
  /** The new address of the instruction that started at `originalVa` (undefined when not ok). */
  newVaOf(originalVa: bigint): bigint | undefined;
}

export interface RelocateOptions {
  /** Expand jrcxz/jecxz/loop/loope/loopne into a rel32 form (default true); false refuses them. */
  readonly expandLoops?: boolean;
}

/** Input: iced-x86 instructions (each at its own ip) or code bytes decoded from `va`. */
export type RelocationInput = readonly IcedInstruction[] | { readonly bytes: Uint8Array; readonly va: bigint };

interface Decoded {
  readonly va: bigint;
  readonly bytes: Uint8Array;
  readonly instr: IcedInstruction | undefined;
  readonly dispOffset: number;
}

/**
 * Moves instructions to `newVa`, fixing RIP-relative operands and relative branches so that every
 * instruction refers to the same absolute addresses as before. Branches whose target is the start
 * of another instruction of the block follow that instruction to its new place; short branches
 * grow to rel32 where needed; calls push the new return address. Never throws for an instruction
 * that cannot move: it is reported as refused, with a code and a reason, and `ok` is false.
 *
 * @example
 * const r = relocateInstructions({ bytes, va: 0x401000n }, 0x40401000n);
 * if (r.ok) write(r.bytes, r.va); else r.instructions.filter((x) => x.status === 'refused');
 */
export function relocateInstructions(input: RelocationInput, newVa: bigint, options: RelocateOptions = {}): RelocationResult {
  const decoded = decodeInput(input);
  try {
    return relocateDecoded(decoded, newVa, options.expandLoops !== false);
  } finally {
    for (const d of decoded) d.instr?.free();
  }
}

function decodeInput(input: RelocationInput): Decoded[] {
  const out: Decoded[] = [];
  if (Array.isArray(input)) {
    // iced instructions do not keep their bytes: re-encode each at its own ip (same length and
    // fields for any decoded instruction), then decode again for uniform handling below.
    const encoder = new Encoder(64);
    try {
      for (const instr of input as readonly IcedInstruction[]) {
        let bytes: Uint8Array;
        try {
          encoder.encode(instr, instr.ip);
          bytes = encoder.takeBuffer();
        } catch {
          // iced refuses to encode it (an invalid or hand-built Instruction): reported as refused.
          out.push({ va: instr.ip, bytes: new Uint8Array(0), instr: undefined, dispOffset: 0 });
          continue;
        }
        out.push(decodeOne(bytes, instr.ip));
      }
    } finally {
      encoder.free();
    }
    return out;
  }
  const { bytes, va } = input as { bytes: Uint8Array; va: bigint };
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = va;
  try {
    let offset = 0;
    while (offset < bytes.length) {
      const instr = decoder.decode();
      const length = instr.isInvalid ? Math.max(1, instr.length) : instr.length;
      const co = instr.isInvalid ? undefined : decoder.getConstantOffsets(instr);
      out.push({ va: va + BigInt(offset), bytes: bytes.slice(offset, offset + length), instr, dispOffset: co?.displacementOffset ?? 0 });
      co?.free();
      offset += length;
      if (instr.isInvalid) break;
    }
  } finally {
    decoder.free();
  }
  return out;
}

function decodeOne(bytes: Uint8Array, va: bigint): Decoded {
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = va;
  try {
    const instr = decoder.decode();
    const co = instr.isInvalid ? undefined : decoder.getConstantOffsets(instr);
    const dispOffset = co?.displacementOffset ?? 0;
    co?.free();
    return { va, bytes, instr, dispOffset };
  } finally {
    decoder.free();
  }
}

type Plan =
  | { kind: 'copied' }
  | { kind: 'rip-relative'; target: bigint }
  | { kind: 'branch'; op: 'jmp' | 'jcc' | 'call'; cc: number; target: bigint }
  | { kind: 'expanded'; target: bigint }
  | { kind: 'refused'; code: RefusedInstruction['code']; reason: CannotMoveReason; message: string };

function planOne(d: Decoded, expandLoops: boolean): Plan {
  const instr = d.instr;
  if (instr === undefined || instr.isInvalid || instr.length !== d.bytes.length) {
    return { kind: 'refused', code: 'ENC_INVALID_INSTRUCTION', reason: 'invalid-instruction', message: 'the bytes do not decode to an instruction' };
  }
  let hasNearBranch = false;
  for (let i = 0; i < instr.opCount; i++) if (instr.opKind(i) === OpKind.NearBranch64) hasNearBranch = true;
  if (hasNearBranch) {
    const target = instr.nearBranchTarget;
    if (instr.isJcxShort || instr.isLoop || instr.isLoopcc) {
      if (!expandLoops) return { kind: 'refused', code: 'ENC_CANNOT_MOVE', reason: 'loop-not-expanded', message: 'jrcxz/loop has only a rel8 form' };
      return { kind: 'expanded', target };
    }
    if (instr.isJmpShortOrNear) return { kind: 'branch', op: 'jmp', cc: 0, target };
    if (instr.isJccShortOrNear) return { kind: 'branch', op: 'jcc', cc: instr.conditionCode - 1, target };
    if (instr.isCallNear) return { kind: 'branch', op: 'call', cc: 0, target };
    return { kind: 'refused', code: 'ENC_CANNOT_MOVE', reason: 'unsupported-branch', message: `${instr.flowControl === FlowControl.XbeginXabortXend ? 'xbegin' : 'this branch form'} is not rewritten` };
  }
  if (instr.isIpRelMemoryOperand) return { kind: 'rip-relative', target: instr.ipRelMemoryAddress };
  return { kind: 'copied' };
}

function relocateDecoded(decoded: readonly Decoded[], newVa: bigint, expandLoops: boolean): RelocationResult {
  const plans = planAll(decoded, expandLoops);
  const starts = startsOf(decoded);

  // Targets further than 4 GiB can never be reached; the exact reach is checked by layout.
  plans.forEach((p, i) => {
    if (p.kind === 'copied' || p.kind === 'refused' || starts.has(p.target)) return;
    if (!fitsSigned(p.target - newVa, 33)) plans[i] = refusedOutOfRange(p.target, newVa);
  });

  // Each failed layout names one instruction that cannot reach; refuse it and lay out again, so
  // that every such instruction is reported, not only the first.
  for (let attempt = 0; attempt <= decoded.length; attempt++) {
    try {
      return movedResult(decoded, plans, starts, newVa);
    } catch (e) {
      if (!(e instanceof EncoderError) || e.code !== 'ENC_REL32_OUT_OF_RANGE' || e.instructionIndex === undefined) throw e;
      const p = plans[e.instructionIndex] as Plan;
      plans[e.instructionIndex] = refusedOutOfRange(p.kind === 'copied' || p.kind === 'refused' ? 0n : p.target, newVa);
    }
  }
  return refusedResult(decoded, plans, newVa);
}

function refusedOutOfRange(target: bigint, newVa: bigint): Plan {
  return {
    kind: 'refused', code: 'ENC_CANNOT_MOVE', reason: 'target-out-of-range',
    message: `target 0x${target.toString(16)} is beyond rel32 reach of 0x${newVa.toString(16)}`,
  };
}

function refusedResult(decoded: readonly Decoded[], plans: readonly Plan[], newVa: bigint): RelocationResult {
  const instructions: InstructionMove[] = decoded.map((d, index) => {
    const p = plans[index] as Plan;
    if (p.kind === 'refused') {
      return { status: 'refused', index, originalVa: d.va, originalLength: d.bytes.length, code: p.code, reason: p.reason, message: p.message };
    }
    return {
      status: 'moved', index, originalVa: d.va, originalLength: d.bytes.length, kind: p.kind, va: 0n, offset: -1,
      bytes: new Uint8Array(0), target: p.kind === 'copied' ? undefined : p.target,
    };
  });
  return { ok: false, va: newVa, bytes: new Uint8Array(0), instructions, newVaOf: () => undefined };
}

/**
 * The layout items of planned moves: a bind of labels[i] before instruction i (so branches inside
 * the group follow their target), then one item per instruction, numbered from `firstIndex`.
 */
function itemsForMoves(
  decoded: readonly Decoded[], plans: readonly Plan[], starts: ReadonlyMap<bigint, number>, labels: readonly Label[], firstIndex: number,
): Item[] {
  const targetOf = (va: bigint): Target => {
    const i = starts.get(va);
    return i === undefined ? va : (labels[i] as Label);
  };
  const items: Item[] = [];
  decoded.forEach((d, i) => {
    const index = firstIndex + i;
    items.push({ kind: 'bind', label: labels[i] as Label });
    const p = plans[i] as Plan;
    const mnemonic = 'move';
    if (p.kind === 'refused') {
      // A stand-in of the same size keeps the others where they would be.
      items.push({ kind: 'fixed', bytes: new Uint8Array(d.bytes.length), fixups: [], mnemonic, index });
    } else if (p.kind === 'copied') {
      items.push({ kind: 'fixed', bytes: d.bytes, fixups: [], mnemonic, index });
    } else if (p.kind === 'rip-relative') {
      // The CPU adds disp32 to the end of the instruction, so the addend spans the rest of it.
      const item: FixedItem = {
        kind: 'fixed', bytes: d.bytes, mnemonic, index,
        fixups: [{ at: d.dispOffset, size: 4, pcrel: true, target: targetOf(p.target), addend: -BigInt(d.bytes.length - d.dispOffset) }],
      };
      items.push(item);
    } else if (p.kind === 'branch') {
      items.push({ kind: 'branch', op: p.op, cc: p.cc, target: targetOf(p.target), mnemonic, index, near: false });
    } else {
      // jrcxz/loop +2 ; jmp short +5 ; jmp rel32 target. Prefixes (67 for jecxz) are kept.
      const n = d.bytes.length;
      const bytes = new Uint8Array(n + 7);
      bytes.set(d.bytes.subarray(0, n - 1));
      bytes.set([0x02, 0xeb, 0x05, 0xe9], n - 1);
      items.push({ kind: 'fixed', bytes, mnemonic, index, fixups: [{ at: n + 3, size: 4, pcrel: true, target: targetOf(p.target), addend: -4n }] });
    }
  });
  return items;
}

/**
 * For Assembler.relocated: the items that re-create `input` at the assembler's position, with
 * labels from `newLabel`. Throws EncoderError ENC_CANNOT_MOVE (or ENC_INVALID_INSTRUCTION) for
 * the first instruction that cannot move; reach is checked when the assembler encodes.
 */
export function planMovedItems(input: RelocationInput, firstIndex: number, newLabel: () => Label, options: RelocateOptions = {}): Item[] {
  const decoded = decodeInput(input);
  try {
    const plans = planAll(decoded, options.expandLoops !== false);
    plans.forEach((p, i) => {
      if (p.kind === 'refused') throw new EncoderError(p.code, `${p.reason}: ${p.message}`, 'relocated', 0, firstIndex + i);
    });
    const starts = startsOf(decoded);
    const labels = decoded.map(() => newLabel());
    return itemsForMoves(decoded, plans, starts, labels, firstIndex);
  } finally {
    for (const d of decoded) d.instr?.free();
  }
}

function startsOf(decoded: readonly Decoded[]): Map<bigint, number> {
  const starts = new Map<bigint, number>();
  decoded.forEach((d, i) => starts.set(d.va, i));
  return starts;
}

/**
 * A test of whether `va` lies inside one of the instructions, in O(log n) a lookup: their ranges
 * sorted by start, with the furthest end reached up to each, so that a binary search for the last
 * start at or below `va` answers it (also for instructions given out of order or overlapping).
 */
function insideTest(decoded: readonly Decoded[]): (va: bigint) => boolean {
  const ranges = decoded.filter((d) => d.bytes.length > 0).map((d) => ({ start: d.va, end: d.va + BigInt(d.bytes.length) }));
  ranges.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const furthestEnd: bigint[] = [];
  let end = 0n;
  for (const r of ranges) {
    if (r.end > end) end = r.end;
    furthestEnd.push(end);
  }
  return (va) => {
    let lo = 0;
    let hi = ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ranges[mid]!.start <= va) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && va < furthestEnd[lo - 1]!;
  };
}

/** Plans every instruction; a target inside the group but not at an instruction start is refused. */
function planAll(decoded: readonly Decoded[], expandLoops: boolean): Plan[] {
  const plans = decoded.map((d) => planOne(d, expandLoops));
  const starts = startsOf(decoded);
  const inside = insideTest(decoded);
  plans.forEach((p, i) => {
    if (p.kind === 'copied' || p.kind === 'refused') return;
    if (inside(p.target) && !starts.has(p.target)) {
      plans[i] = { kind: 'refused', code: 'ENC_CANNOT_MOVE', reason: 'target-inside-instruction', message: `target 0x${p.target.toString(16)} is inside an instruction of the block` };
    }
  });
  return plans;
}

function movedResult(decoded: readonly Decoded[], plans: readonly Plan[], starts: ReadonlyMap<bigint, number>, newVa: bigint): RelocationResult {
  const owner = {};
  const labels: Label[] = decoded.map((_, i) => createLabel(owner, i, undefined));
  const items = itemsForMoves(decoded, plans, starts, labels, 0);
  const r = layout(items, labels, decoded.length, { va: newVa });
  if (plans.some((p) => p.kind === 'refused')) return refusedResult(decoded, plans, newVa);
  const newVas = new Map<bigint, bigint>();
  const instructions: InstructionMove[] = decoded.map((d, index) => {
    const p = plans[index] as Plan;
    if (p.kind === 'refused') throw new Error('unreachable: refused plans are reported by refusedResult');
    const offset = r.instructionOffsets[index] as number;
    const end = r.instructionOffsets[index + 1] as number;
    newVas.set(d.va, newVa + BigInt(offset));
    let target: bigint | undefined;
    if (p.kind !== 'copied') {
      const i = starts.get(p.target);
      target = i === undefined ? p.target : newVa + BigInt(r.labelOffset(labels[i] as Label));
    }
    return {
      status: 'moved', index, originalVa: d.va, originalLength: d.bytes.length, kind: p.kind,
      va: newVa + BigInt(offset), offset, bytes: r.bytes.slice(offset, end), target,
    };
  });
  return { ok: true, va: newVa, bytes: r.bytes, instructions, newVaOf: (va) => newVas.get(va) };
}
