import { test } from 'uvu';
import * as assert from 'uvu/assert';
test('smoke', () => { assert.ok(true); });
test.run();
