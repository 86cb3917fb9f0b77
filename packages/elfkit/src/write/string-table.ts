/**
 * A string table grown by appending: the original bytes stay where they are (so every existing
 * sh_name / st_name index keeps its meaning) and new names go after them.
 */
export class StringTableBuilder {
  private readonly parts: Uint8Array[] = [];
  private readonly added = new Map<string, number>();
  private length: number;

  /** Starts from an existing table's bytes, or from the single NUL every table begins with. */
  constructor(initial?: Uint8Array) {
    const start = initial !== undefined && initial.length > 0 ? initial : Uint8Array.of(0);
    this.parts.push(start);
    this.length = start.length;
    // A table whose last string is not terminated would swallow the first appended name.
    if (start[start.length - 1] !== 0) {
      this.parts.push(Uint8Array.of(0));
      this.length += 1;
    }
  }

  /** The index of `name`, appending it the first time it is asked for. */
  add(name: string): number {
    const known = this.added.get(name);
    if (known !== undefined) return known;
    const index = this.length;
    const encoded = Buffer.from(`${name}\0`, 'utf8');
    this.parts.push(encoded);
    this.length += encoded.length;
    this.added.set(name, index);
    return index;
  }

  get size(): number {
    return this.length;
  }

  /** Copies the table into `out` at `offset`. */
  writeTo(out: Uint8Array, offset: number): void {
    let at = offset;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
  }
}
