/**
 * GOT references resolved without a GOT. A GOT entry would hold an absolute address, wrong in a PIE
 * or shared library whose load bias is unknown here; but the instructions gcc emits to read one can
 * be rewritten to reach the symbol directly, as GNU ld does when the symbol is local:
 *
 *   mov  foo@GOTPCREL(%rip), %reg   8b /r (modrm 00 reg 101)  ->  lea foo(%rip), %reg   8d /r
 *   call *foo@GOTPCREL(%rip)        ff 15                      ->  addr32 call foo       67 e8
 *   jmp  *foo@GOTPCREL(%rip)        ff 25                      ->  jmp foo; nop          e9 .. 90
 *
 * Each keeps the instruction's length. Anything else that reads the GOT (`add foo@GOTPCREL(%rip)`,
 * a GOTPCREL in data) cannot be rewritten PC-relatively and is refused.
 */

/** Which rewrite a GOT reference gets. */
export type GotRelaxation = 'mov-to-lea' | 'call' | 'jmp';

/**
 * The rewrite for the GOT reference whose 32-bit field is at `offset` in `bytes` (an executable
 * section's contents), or why there is none.
 */
export function planGotRelaxation(bytes: Uint8Array, offset: number, addend: bigint): GotRelaxation | { refused: string } {
  // The field must be the instruction's last bytes (addend -4) for the GOT slot to be what the
  // instruction reads; any other addend reads past it, and the rewrite would change the meaning.
  if (addend !== -4n) return { refused: `addend ${addend} (not -4): not a plain load of the GOT slot` };
  if (offset < 2) return { refused: 'no room for an opcode before the field' };
  const opcode = bytes[offset - 2];
  const modrm = bytes[offset - 1] ?? 0;
  if (opcode === 0x8b && (modrm & 0xc7) === 0x05) return 'mov-to-lea';
  if (opcode === 0xff && modrm === 0x15) return 'call';
  if (opcode === 0xff && modrm === 0x25) return 'jmp';
  return {
    refused: `the instruction (opcode 0x${(opcode ?? 0).toString(16)}) is not a mov, call or jmp through the GOT, so it cannot be relaxed`,
  };
}

/**
 * Rewrites the instruction in `bytes` (field at `offset`) and returns where the 32-bit field is
 * afterwards, relative to `offset` (-1 for jmp, whose rel32 moves up one byte).
 */
export function applyGotRelaxation(bytes: Uint8Array, offset: number, relaxation: GotRelaxation): number {
  switch (relaxation) {
    case 'mov-to-lea':
      bytes[offset - 2] = 0x8d;
      return 0;
    case 'call':
      // The address-size prefix pads the 5-byte call to the 6 bytes of the indirect one; ld does the same.
      bytes[offset - 2] = 0x67;
      bytes[offset - 1] = 0xe8;
      return 0;
    case 'jmp':
      // The nop after the jmp is never reached; it only fills the sixth byte.
      bytes[offset - 2] = 0xe9;
      bytes[offset + 3] = 0x90;
      return -1;
  }
}
