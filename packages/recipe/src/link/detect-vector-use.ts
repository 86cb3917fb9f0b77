/**
 * Whether linked handler code touches state the stub does not save. The stub keeps the general
 * registers a SysV call may clobber; programs also expect xmm/ymm/zmm, mask, MMX and x87 registers
 * (and MXCSR) to survive a system call, so code that touches any of them needs a stub that saves
 * the extended state (xsave), which costs far more than the call itself.
 */
import iced from '../iced-module.js';
import type { VectorUse } from './link-types.js';

const { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction, InstructionInfoFactory, Mnemonic, RegisterExt } = iced;

// Instructions that change vector or x87 control state through memory operands only, so their
// used registers do not show it.
const CONTROL_STATE_MNEMONICS = new Set<number>([
  Mnemonic.Ldmxcsr, Mnemonic.Vldmxcsr, Mnemonic.Stmxcsr, Mnemonic.Vstmxcsr, Mnemonic.Fldcw, Mnemonic.Fnstcw,
  Mnemonic.Fldenv, Mnemonic.Fnstenv, Mnemonic.Fninit, Mnemonic.Fnclex, Mnemonic.Emms, Mnemonic.Femms,
  Mnemonic.Vzeroupper, Mnemonic.Vzeroall,
]);

function touchesVectorState(register: number): boolean {
  return RegisterExt.isVectorRegister(register) || RegisterExt.isMM(register) || RegisterExt.isK(register) ||
    RegisterExt.isST(register) || RegisterExt.isTMM(register);
}

/**
 * The first instruction in `code` (decoded at `va`) that reads or writes vector, mask or x87 state,
 * or undefined when there is none.
 */
export function findVectorUse(code: Uint8Array, va: bigint): VectorUse | undefined {
  if (code.length === 0) return undefined;
  const decoder = new Decoder(64, code, DecoderOptions.None);
  const instr = new Instruction();
  const factory = new InstructionInfoFactory();
  try {
    decoder.ip = va;
    while (decoder.canDecode) {
      decoder.decodeOut(instr);
      let hit = instr.isSaveRestoreInstruction || CONTROL_STATE_MNEMONICS.has(instr.mnemonic);
      if (!hit) {
        const info = factory.info(instr);
        try {
          for (const u of info.usedRegisters() as { register: number; free(): void }[]) {
            if (touchesVectorState(u.register)) hit = true;
            u.free();
          }
        } finally {
          info.free();
        }
      }
      if (hit) return { va: instr.ip, instruction: formatInstruction(instr) };
    }
    return undefined;
  } finally {
    factory.free();
    instr.free();
    decoder.free();
  }
}

function formatInstruction(instr: InstanceType<typeof Instruction>): string {
  const formatter = new Formatter(FormatterSyntax.Gas);
  try {
    return formatter.format(instr);
  } finally {
    formatter.free();
  }
}
