/**
 * A position in an Assembler's output, created by `a.label()` and placed by `a.bind(label)`.
 * It may be referenced before it is bound (forward references); `encode()` fails with
 * ENC_UNBOUND_LABEL if it never is.
 */
export interface Label {
  readonly kind: 'label';
  /** Index of the label in its Assembler, in creation order. */
  readonly id: number;
  /** Optional name, for error messages and the label table of the result. */
  readonly name: string | undefined;
  /** @internal identifies the owning Assembler so a label cannot leak into another. */
  readonly owner: object;
}

/**
 * A name defined outside this assembler (`a.symbol('syscall_func')`). References to it become
 * relocation records unless `encode({ symbols })` gives its address.
 */
export interface ExternalSymbol {
  readonly kind: 'symbol';
  readonly name: string;
}

/** Where a label landed in an encode result. */
export interface LabelPlacement {
  readonly label: Label;
  readonly name: string | undefined;
  /** Byte offset from the start of the encoded block. */
  readonly offset: number;
  /** Virtual address: the block's va plus offset. */
  readonly va: bigint;
}

export function createLabel(owner: object, id: number, name: string | undefined): Label {
  return Object.freeze({ kind: 'label', id, name, owner });
}

export function createSymbol(name: string): ExternalSymbol {
  return Object.freeze({ kind: 'symbol', name });
}

/** A branch or RIP-relative target: a label, an external symbol, or an absolute virtual address. */
export type Target = Label | ExternalSymbol | bigint;

export function isLabel(x: unknown): x is Label {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'label';
}

export function isSymbol(x: unknown): x is ExternalSymbol {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'symbol';
}

export function describeTarget(t: Target): string {
  if (typeof t === 'bigint') return `0x${t.toString(16)}`;
  if (t.kind === 'symbol') return t.name;
  return t.name ?? `label #${t.id}`;
}
