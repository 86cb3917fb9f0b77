#!/usr/bin/env node
// Cookbook: feed a plan made by `libos-patch plan` to another tool. This one plays two roles:
//  - a loader: it prints what a loader would do with the plan at run time (map each segment at
//    load bias + va with its protection, then write each patch's `after` bytes over `before`);
//  - a rewriter: it checks the plan against the input (size, sha256, every `before`) and writes
//    the rewritten file with @libos/recipe's rewriteElf, as `libos-patch apply` would.
//   node examples/cookbook/apply-plan.mjs <elf> <plan.json> <out>
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readElf } from '@libos/elfkit';
import { parsePlan, rewriteElf } from '@libos/recipe';

const [input, planFile, output] = process.argv.slice(2);
if (!input || !planFile || !output) {
  console.error('usage: apply-plan.mjs <elf> <plan.json> <out>');
  process.exit(2);
}
const bytes = new Uint8Array(readFileSync(input));
const plan = parsePlan(readFileSync(planFile, 'utf8'));

// A plan is only valid for the exact file it was made for.
const sha256 = createHash('sha256').update(bytes).digest('hex');
if (bytes.length !== plan.input.size || sha256 !== plan.input.sha256) {
  console.error(`${input}: not the file this plan was made for (sha256 ${sha256}, plan ${plan.input.sha256})`);
  process.exit(2);
}
for (const p of plan.patches) {
  if (!Buffer.from(bytes.subarray(p.offset, p.offset + p.before.length)).equals(Buffer.from(p.before))) {
    console.error(`${input}: the bytes at offset ${p.offset} are not the plan's 'before'`);
    process.exit(2);
  }
}

const hex = (v) => `0x${v.toString(16)}`;
for (const s of plan.segments) {
  console.log(`map   ${s.name.padEnd(12)} bias+${hex(s.va)}  ${s.flags}  ${s.bytes.length} bytes from the plan, ${s.memsz} in memory`);
}
for (const r of plan.relocations) console.log(`reloc ${r.segment}+${hex(r.offset)} ${r.type} ${r.symbol} addend ${r.addend}`);
for (const p of plan.patches) {
  console.log(`patch bias+${hex(p.va)} (file offset ${p.offset}) ${p.variant}: ${Buffer.from(p.after).toString('hex')}`);
}
if (plan.entryPoint !== undefined) console.log(`entry bias+${hex(plan.entryPoint)}`);

// Symbols the file does not define are the loader's to resolve: a file cannot be written without them.
if (plan.relocations.length > 0) {
  console.log(`not writing ${output}: the plan leaves ${plan.relocations.length} reference(s) for a loader to resolve`);
  process.exit(0);
}
writeFileSync(output, rewriteElf(readElf(bytes), plan));
chmodSync(output, statSync(input).mode & 0o7777);
console.log(`wrote ${output}`);
