#!/usr/bin/env node
// Loads the built CLI. Kept as a committed file so npm links the bin at `npm ci` time.
import('../dist/bin.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  process.stderr.write(`libos-patch: error: ${err && err.code === 'ERR_MODULE_NOT_FOUND' ? 'the CLI is not built; run `npm run build` first' : String(err && err.message || err)}\n`);
  process.exit(3);
});
