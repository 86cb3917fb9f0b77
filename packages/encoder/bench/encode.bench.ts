/**
 * Encoder benchmark: instructions encoded per second for a trampoline-sized block (the LAHF stub
 * of stub-designs.S, 20 instructions with a call to an external symbol), beside iced-x86's own
 * Encoder and BlockEncoder on the same instructions in the same run (median of 7 interleaved runs).
 *
 * Run alone: `node --conditions=libos-source --import tsx packages/encoder/bench/encode.bench.ts`;
 * the root `npm run bench` calls {@link run}.
 */
import iced from 'iced-x86';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Assembler, al, qword, r11, rax, rcx, rsp } from '../src/index.js';

const { Decoder, DecoderOptions, Encoder, BlockEncoder, BlockEncoderOptions } = iced;

/** One measurement: our median, and the baseline's when there is one. */
export interface BenchResult {
  /** What was measured. */
  readonly name: string;
  readonly unit: 'instructions/s';
  readonly runs: number[];
  readonly median: number;
  readonly baseline?: { readonly name: string; readonly runs: number[]; readonly median: number };
  /** median / baseline.median: above 1 means more instructions per second than the baseline. */
  readonly ratio?: number;
  /** Sizes and counts that say what the work was. */
  readonly detail: string;
}

const RUNS = 7;
const RUN_MS = 150;
const VA = 0x7f0000001000n;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** The LAHF stub (LAHFSTUB in stub-designs.S). */
function lahfStub(a: Assembler): Assembler {
  return a.lea(rsp, qword(rsp, -128)).push(rcx).mov(r11, rax).seto(al).lahf().xchg(rax, r11).push(r11)
    .call(a.symbol('handler')).pop(r11).xchg(rax, r11).add(al, 0x7f).sahf().mov(rax, r11).pushfq().pop(r11)
    .pop(rcx).lea(rsp, qword(rsp, 128)).jmp(rcx);
}

/** Instructions per second of `body`, which encodes `perCall` instructions, over one timed run. */
function rate(body: () => void, perCall: number): number {
  for (let i = 0; i < 200; i++) body(); // warm up
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < RUN_MS) {
    for (let i = 0; i < 100; i++) body();
    calls += 100;
    t = performance.now();
  }
  return (calls * perCall) / ((t - t0) / 1000);
}

/** Runs the encoder benchmarks and returns one result per measurement. */
export async function run(): Promise<BenchResult[]> {
  const prebuilt = lahfStub(new Assembler());
  const count = prebuilt.instructionCount;
  // The same instructions as iced Instruction objects, with the call resolved (iced has no symbols).
  const handlerVa = VA + 0x1000n;
  const code = prebuilt.encode({ va: VA, symbols: { handler: handlerVa } }).bytes;
  const decoder = new Decoder(64, code, DecoderOptions.None);
  decoder.ip = VA;
  const instrs: InstanceType<typeof iced.Instruction>[] = [];
  while (decoder.canDecode) instrs.push(decoder.decode());
  decoder.free();
  if (instrs.length !== count) throw new Error(`decoded ${instrs.length} instructions, expected ${count}`);

  let sink = 0;
  const encoder = new Encoder(64);
  const bodies = {
    oursFull: () => { sink += lahfStub(new Assembler()).encode({ va: VA, symbols: { handler: handlerVa } }).bytes.length; },
    oursEncode: () => { sink += prebuilt.encode({ va: VA, symbols: { handler: handlerVa } }).bytes.length; },
    icedBlock: () => {
      const be = new BlockEncoder(64, BlockEncoderOptions.None);
      for (const i of instrs) be.add(i);
      sink += be.encode(VA).length;
      be.free();
    },
    icedEncoder: () => {
      let ip = VA;
      for (const i of instrs) ip += BigInt(encoder.encode(i, ip));
      sink += encoder.takeBuffer().length;
    },
  };
  // Runs are interleaved (ours, iced, ours, ...) so that a change in machine load hits both sides.
  const runs: Record<keyof typeof bodies, number[]> = { oursFull: [], oursEncode: [], icedBlock: [], icedEncoder: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const key of Object.keys(bodies) as (keyof typeof bodies)[]) runs[key].push(rate(bodies[key], count));
  }
  const { oursFull, oursEncode, icedBlock, icedEncoder } = runs;
  encoder.free();
  for (const i of instrs) i.free();
  if (sink === 0) throw new Error('nothing encoded');

  const detail = `LAHF stub: ${count} instructions, ${code.length} bytes, call rel32 to a symbol; ${RUNS} runs of ${RUN_MS} ms`;
  const result = (name: string, runs: number[], baselineName: string, baselineRuns: number[]): BenchResult => {
    const m = median(runs);
    const b = median(baselineRuns);
    return { name, unit: 'instructions/s', runs, median: m, baseline: { name: baselineName, runs: baselineRuns, median: b }, ratio: m / b, detail };
  };
  return [
    result('encoder: build + encode (new Assembler, 18 method calls, encode)', oursFull, 'iced-x86 BlockEncoder (prebuilt Instructions)', icedBlock),
    result('encoder: encode a prebuilt Assembler (layout + bytes)', oursEncode, 'iced-x86 BlockEncoder (prebuilt Instructions)', icedBlock),
    result('encoder: encode a prebuilt Assembler (layout + bytes)', oursEncode, 'iced-x86 Encoder, one instruction at a time', icedEncoder),
  ];
}

function format(r: BenchResult): string {
  const k = (x: number) => `${(x / 1e6).toFixed(2)} M`;
  return `${r.name}: ${k(r.median)}${r.unit}` +
    (r.baseline ? ` | ${r.baseline.name}: ${k(r.baseline.median)}${r.unit} | ratio ${r.ratio?.toFixed(2)}` : '') + `\n  (${r.detail})`;
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  for (const r of await run()) console.log(format(r));
}
