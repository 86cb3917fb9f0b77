import type { NameFilter } from '../model.js';

const compiled = new Map<string, RegExp>();

/**
 * Shell-style glob to RegExp: `*` any run, `?` one character, `[...]` a class (`[!...]` negated);
 * everything else literal. Compiled once per pattern.
 */
export function globToRegExp(glob: string): RegExp {
  let re = compiled.get(glob);
  if (re !== undefined) return re;
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
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
  re = new RegExp(`^${source}$`, 's');
  compiled.set(glob, re);
  return re;
}

/**
 * Whether `name` passes `filter`: it matches an include glob (or there are none) and no exclude glob.
 * An unknown name (undefined) passes only a filter without includes.
 */
export function passesNameFilter(filter: NameFilter | undefined, name: string | undefined): boolean {
  if (filter === undefined) return true;
  if (filter.include !== undefined && filter.include.length > 0) {
    if (name === undefined || !filter.include.some((g) => globToRegExp(g).test(name))) return false;
  }
  if (name !== undefined && filter.exclude !== undefined && filter.exclude.some((g) => globToRegExp(g).test(name))) return false;
  return true;
}
