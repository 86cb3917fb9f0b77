/**
 * Condition-code suffixes and their numbers (the low nibble of jcc/setcc/cmovcc opcodes).
 * Aliases share a number; GNU as accepts them all.
 */
export const CONDITIONS = {
  o: 0, no: 1, b: 2, c: 2, nae: 2, ae: 3, nb: 3, nc: 3, e: 4, z: 4, ne: 5, nz: 5,
  be: 6, na: 6, a: 7, nbe: 7, s: 8, ns: 9, p: 10, pe: 10, np: 11, po: 11,
  l: 12, nge: 12, ge: 13, nl: 13, le: 14, ng: 14, g: 15, nle: 15,
} as const;

/** A condition suffix: `e` in `je`, `sete`, `cmove`. */
export type Condition = keyof typeof CONDITIONS;

export const CONDITION_NAMES = Object.keys(CONDITIONS) as Condition[];
