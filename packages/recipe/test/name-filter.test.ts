// Globs of the recipe's `sections`/`symbols` filters: the matcher against a RegExp made from the
// same glob (the form it replaced), on random globs and names; and patterns that take a
// backtracking RegExp exponential time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { globMatches, passesNameFilter } from '../src/discover/name-filter.js';

/** The glob as a RegExp, as the filter used to compile it: the reference for ordinary patterns. */
function reference(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else if (ch === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) source += '\\[';
      else {
        let body = glob.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        source += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else source += ch.replace(/[.+^${}()|\\/\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** A small deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test('globs: the same answers as the RegExp they replaced, on 20,000 random globs and names', () => {
  const next = rng(12345);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const globParts = ['a', 'b', '_', '.', '*', '?', '[ab]', '[!a]', '[a-c]', '[^b]', '[', ']', '-', '\\', 'é'];
  const nameChars = ['a', 'b', 'c', '_', '.', '[', ']', '-', '\\', 'é', '\n'];
  let matched = 0;
  for (let i = 0; i < 20000; i++) {
    const glob = Array.from({ length: 1 + Math.floor(next() * 6) }, () => pick(globParts)).join('');
    // A class that starts with `]` is where shells and RegExps part: `[]a]` is `]` or `a` to a shell
    // (and to the matcher), an empty class followed by `a]` to a RegExp.
    if (/\[[!^]?\]/.test(glob)) continue;
    let re: RegExp;
    try {
      re = reference(glob);
    } catch {
      continue; // a class the RegExp cannot compile (a reversed range): no reference
    }
    const name = Array.from({ length: Math.floor(next() * 8) }, () => pick(nameChars)).join('');
    const want = re.test(name);
    if (want) matched++;
    assert.is(globMatches(glob, name), want, `${JSON.stringify(glob)} on ${JSON.stringify(name)}`);
  }
  assert.ok(matched > 300, `enough matches to mean something (${matched})`);
});

test('globs: a pattern of many stars against a long name that misses is answered (a RegExp backtracks for hours)', () => {
  const glob = `${'*?'.repeat(30)}#`;
  const name = 'x'.repeat(5000);
  assert.is(globMatches(glob, name), false);
  assert.is(globMatches(glob, `${name}#`), true);
  assert.is(passesNameFilter({ include: [glob] }, name), false);
  assert.is(passesNameFilter({ include: ['*'], exclude: [glob] }, `${name}#`), false);
});

test.run();
