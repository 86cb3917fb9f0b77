import type { NameFilter } from '../model.js';

/**
 * A compiled shell-style glob: `*` any run, `?` one character, `[...]` a class (`[!...]` or
 * `[^...]` negated, `a-z` a range), everything else literal. Characters are UTF-16 code units, as a RegExp without
 * the `u` flag sees them.
 */
type Token =
  | { kind: 'star' }
  | { kind: 'one' }
  | { kind: 'char'; code: number }
  | { kind: 'class'; negated: boolean; ranges: number[] };

const compiled = new Map<string, Token[]>();

function compile(glob: string): Token[] {
  let tokens = compiled.get(glob);
  if (tokens !== undefined) return tokens;
  tokens = [];
  for (let i = 0; i < glob.length; i++) {
    const ch = glob.charCodeAt(i);
    if (glob[i] === '*') {
      // `**` matches what `*` does: one star keeps the matcher's backtracking to one point.
      if (tokens[tokens.length - 1]?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (glob[i] === '?') tokens.push({ kind: 'one' });
    else if (glob[i] === '[' && glob.indexOf(']', i + 2) >= 0) {
      const close = glob.indexOf(']', i + 2);
      let body = glob.slice(i + 1, close);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      const ranges: number[] = [];
      for (let k = 0; k < body.length; k++) {
        const lo = body.charCodeAt(k);
        if (body[k + 1] === '-' && k + 2 < body.length) {
          ranges.push(lo, body.charCodeAt(k + 2));
          k += 2;
        } else ranges.push(lo, lo);
      }
      tokens.push({ kind: 'class', negated, ranges });
      i = close;
    } else tokens.push({ kind: 'char', code: ch });
  }
  compiled.set(glob, tokens);
  return tokens;
}

function matchesOne(t: Token, code: number): boolean {
  switch (t.kind) {
    case 'one': return true;
    case 'char': return t.code === code;
    case 'class': {
      let inside = false;
      for (let k = 0; k < t.ranges.length && !inside; k += 2) inside = code >= (t.ranges[k] as number) && code <= (t.ranges[k + 1] as number);
      return inside !== t.negated;
    }
    case 'star': return false;
  }
}

/**
 * Whether `name` matches `glob` whole. Not a RegExp: a backtracking engine takes exponential time
 * on a pattern like `*?*?*?...x` (a recipe's, or matched against a file's crafted symbol names);
 * this matcher returns to the last star only, so it takes at most (glob length x name length) steps.
 */
export function globMatches(glob: string, name: string): boolean {
  const tokens = compile(glob);
  let t = 0;
  let s = 0;
  let starT = -1;
  let starS = 0;
  while (s < name.length) {
    const token = tokens[t];
    if (token !== undefined && token.kind === 'star') {
      starT = t++;
      starS = s;
    } else if (token !== undefined && matchesOne(token, name.charCodeAt(s))) {
      t++;
      s++;
    } else if (starT >= 0) {
      // Let the last star take one more character and try the rest again from there.
      t = starT + 1;
      s = ++starS;
    } else return false;
  }
  while (tokens[t]?.kind === 'star') t++;
  return t === tokens.length;
}

/**
 * Whether `name` passes `filter`: it matches an include glob (or there are none) and no exclude glob.
 * An unknown name (undefined) passes only a filter without includes.
 */
export function passesNameFilter(filter: NameFilter | undefined, name: string | undefined): boolean {
  if (filter === undefined) return true;
  if (filter.include !== undefined && filter.include.length > 0) {
    if (name === undefined || !filter.include.some((g) => globMatches(g, name))) return false;
  }
  if (name !== undefined && filter.exclude !== undefined && filter.exclude.some((g) => globMatches(g, name))) return false;
  return true;
}
