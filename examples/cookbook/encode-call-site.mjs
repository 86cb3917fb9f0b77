#!/usr/bin/env node
// Cookbook: use @libos/encoder from your own tool. Assembles the seed's call-site sequence for a
// site at SITE_VA that jumps to a stub at STUB_VA, padded to the 12-byte window, and prints it.
//   node examples/cookbook/encode-call-site.mjs [SITE_VA] [STUB_VA]
import { Assembler, rcx, rip } from '@libos/encoder';

const siteVa = BigInt(process.argv[2] ?? '0x401063');
const stubVa = BigInt(process.argv[3] ?? '0x405010');
const WINDOW = 12; // syscall + 10 NOPs, as SYSCALL_INST leaves it

const a = new Assembler();
const resume = a.label('resume');
a.lea(rcx, rip(resume)); // rcx = where the program resumes, as `syscall` would leave it
a.jmp(stubVa, { near: true }); // e9 rel32 to the shared stub
a.bind(resume);

const { bytes } = a.encode({ va: siteVa });
if (bytes.length > WINDOW) throw new Error(`${bytes.length} bytes do not fit the ${WINDOW}-byte window`);
const hex = Buffer.from(bytes).toString('hex').replace(/(..)/g, '$1 ').trim();
console.log(`site 0x${siteVa.toString(16)} -> stub 0x${stubVa.toString(16)}: ${hex}`);
