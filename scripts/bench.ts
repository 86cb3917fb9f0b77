/**
 * `npm run bench`: runs every package's benchmark (each module exports `run()`), prints each
 * result with its baseline measured in the same run, and the ratio. Figures are medians.
 */
const suites = [
  '../packages/elfkit/bench/read.bench.ts',
  '../packages/encoder/bench/encode.bench.ts',
  '../packages/recipe/bench/discover.bench.ts',
  '../packages/recipe/bench/plan.bench.ts',
];

type Loose = Record<string, unknown> & { name?: string };

function figure(r: Loose): string {
  const value = (r['median'] ?? r['ms'] ?? r['value']) as number | undefined;
  const unit = (r['unit'] as string | undefined) ?? (r['ms'] !== undefined ? 'ms' : '');
  const base = r['baseline'] as Loose | undefined;
  const baseValue = base === undefined ? undefined : ((base['median'] ?? base['ms'] ?? base['value']) as number | undefined);
  let line = `${r.name}: ${value === undefined ? JSON.stringify(r) : `${value.toFixed(2)} ${unit}`}`;
  if (base !== undefined && baseValue !== undefined && value !== undefined) {
    const ratio = unit.endsWith('/s') ? value / baseValue : baseValue / value;
    line += ` | baseline ${base['name']}: ${baseValue.toFixed(2)} ${unit} | ${ratio.toFixed(2)}x ${unit.endsWith('/s') ? 'the baseline' : 'faster than the baseline'}`;
  }
  return line;
}

const { existsSync } = await import('node:fs');
const { fileURLToPath } = await import('node:url');
for (const rel of suites) {
  const url = new URL(rel, import.meta.url);
  if (!existsSync(fileURLToPath(url))) continue;
  process.stdout.write(`\n== ${rel.replace('../packages/', '')}\n`);
  const mod = (await import(url.href)) as { run: () => Promise<Loose[]> };
  for (const r of await mod.run()) process.stdout.write(`${figure(r)}\n`);
}
