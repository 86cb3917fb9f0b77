// Which exit status each kind of engine error ends the command with (docs/error-codes.md).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ElfError } from '@libos/elfkit';
import { EncoderError } from '@libos/encoder';
import { PlanError } from '@libos/recipe';
import { CliError } from '../src/errors.js';
import { toCliError } from '../src/map-error.js';

test('reader errors on an input are bad input (exit 2) and keep their code and offset', () => {
  const error = toCliError(new ElfError('ELF_BAD_MAGIC', 0, 'not an ELF file'), 'x.txt');
  assert.is(error.code, 'CLI_BAD_ELF');
  assert.is(error.exitStatus, 2);
  assert.is(error.engineCode, 'ELF_BAD_MAGIC');
  assert.is(error.location(), 'x.txt: ELF_BAD_MAGIC at offset 0x0: not an ELF file');
});

test('planner errors the input causes are exit 2; its self-check failing is exit 3', () => {
  assert.is(toCliError(new PlanError('PLAN_SYMBOL_NOT_FOUND', 'no such symbol'), 'a').exitStatus, 2);
  assert.is(toCliError(new PlanError('PLAN_HANDLER', 'LINK_COMPILE_FAILED: h.c: error'), 'a').exitStatus, 2);
  assert.is(toCliError(new PlanError('PLAN_UNSUPPORTED_FILE', 'an object file'), 'a').exitStatus, 2);
  const bug = toCliError(new PlanError('PLAN_CHECK_FAILED', 'site 0x1: overlaps'), 'a');
  assert.is(bug.exitStatus, 3);
  assert.is(bug.location(), 'a: internal error: PLAN_CHECK_FAILED: site 0x1: overlaps');
});

test('writer checks of the engine\'s own edit and encoder errors are internal (exit 3)', () => {
  assert.is(toCliError(new ElfError('ELF_PATCH_OVERLAP' as never, 10, 'two patches overlap'), 'a').exitStatus, 3);
  assert.is(toCliError(new EncoderError('ENC_REL32_OUT_OF_RANGE', 'too far'), 'a').exitStatus, 3);
  assert.is(toCliError(new ElfError('ELF_WRITE_UNSUPPORTED' as never, -1, 'no PT_LOAD'), 'a').exitStatus, 2);
});

test('anything uncoded is an internal error, exit 3; a CliError passes through', () => {
  const error = toCliError(new TypeError('x is undefined'));
  assert.is(error.code, 'CLI_INTERNAL');
  assert.is(error.exitStatus, 3);
  assert.is(error.location(), 'internal error: x is undefined');
  const own = new CliError('CLI_USAGE', 'bad');
  assert.is(toCliError(own), own);
  assert.is(toCliError('a string').exitStatus, 3);
});

test('a package without its dist says how to build it', () => {
  const missing = Object.assign(new Error("Cannot find module '/x/node_modules/@libos/recipe/dist/index.js'"), { code: 'ERR_MODULE_NOT_FOUND' });
  const error = toCliError(missing);
  assert.is(error.exitStatus, 3);
  assert.match(error.location(), /^internal error: Cannot find module .*\(run `npm run build` at the repository root\)$/);
});

test.run();
