/** A slot offset that no disp32 can hold is a recipe error at its line, not an encoder failure later. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRecipe } from '@libos/recipe';

test('entry.slot.offset above 0x7fffffff: one file:line:col message', () => {
  const r = parseRecipe('name: bad-slot\nextends: gramine-style\nentry:\n  slot:\n    segment: gs\n    offset: 99999999999\n', 'bad.yaml');
  assert.is(r.recipe, undefined);
  assert.equal(r.errors.map(String), ['bad.yaml:6:13: entry.slot.offset: must be at most 2147483647, got the number 99999999999']);
});

test('entry.slot.offset 0x7fffffff is accepted', () => {
  const r = parseRecipe('name: ok-slot\nextends: gramine-style\nentry:\n  slot:\n    segment: gs\n    offset: 2147483647\n', 'ok.yaml');
  assert.equal(r.errors, []);
  assert.equal(r.recipe?.entry, { kind: 'slot', segment: 'gs', offset: 2147483647 });
});

test.run();
