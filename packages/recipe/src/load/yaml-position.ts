import type { Document, LineCounter, Node } from 'yaml';
import { yamlModule } from '../lazy-modules.js';
import type { RecipePath } from '../errors.js';

/** A 1-based line and column. */
export interface SourcePosition {
  line: number;
  col: number;
}

/** What a recipe path leads to in the YAML document: the value, the key that names it, or how far it got. */
export interface LocatedPath {
  /** The value node at the full path, if it exists. */
  value?: Node;
  /** The key node of the last path step, if that step is a map key that exists. */
  key?: Node;
  /** The deepest node the path reaches (the document root when nothing matches). */
  nearest?: Node;
}

/**
 * Follow a recipe path (keys and indices, as in a zod issue) through the document's nodes. Aliases
 * are followed to their anchors, so an error in merged-in YAML points at the text that holds it.
 */
export function locatePath(doc: Document, path: RecipePath): LocatedPath {
  const { isMap, isScalar, isSeq } = yamlModule();
  let node: Node | undefined = resolveAlias(doc, doc.contents ?? undefined);
  let key: Node | undefined;
  let nearest = node;
  for (const step of path) {
    key = undefined;
    let next: Node | undefined;
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(step));
      if (pair) {
        key = pair.key as Node;
        next = resolveAlias(doc, (pair.value ?? undefined) as Node | undefined);
        if (next === undefined || isEmptyScalar(next)) {
          // `key:` with no value: the key is the best place to point at.
          return { key, nearest: key };
        }
      }
    } else if (isSeq(node) && typeof step === 'number') {
      next = resolveAlias(doc, (node.items[step] ?? undefined) as Node | undefined);
    }
    if (next === undefined) return { nearest };
    node = next;
    nearest = next;
  }
  return { value: node, key, nearest };
}

/** `key:` with nothing after it parses as a null scalar of no width, placed after the colon. */
function isEmptyScalar(node: Node): boolean {
  return yamlModule().isScalar(node) && node.value === null && node.range !== undefined && node.range !== null && node.range[0] === node.range[1];
}

function resolveAlias(doc: Document, node: Node | undefined): Node | undefined {
  if (node !== undefined && yamlModule().isAlias(node)) return (node.resolve(doc) ?? undefined) as Node | undefined;
  return node;
}

/** The position where a node starts; 1:1 for a node without a range (an empty document). */
export function nodePosition(lineCounter: LineCounter, node: Node | undefined): SourcePosition {
  const offset = node?.range?.[0];
  if (offset === undefined) return { line: 1, col: 1 };
  return offsetPosition(lineCounter, offset);
}

/** The 1-based line and column of a character offset. */
export function offsetPosition(lineCounter: LineCounter, offset: number): SourcePosition {
  const { line, col } = lineCounter.linePos(offset);
  return { line, col };
}
