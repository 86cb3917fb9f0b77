/**
 * `npm run bench`: runs every package's benchmark (each module exports `run()`, and may export
 * `targets(results)` checking the issue's goals), prints each result with its baseline measured in
 * the same run and the ratio, and writes docs/benchmarks.md (tables, the machine, the targets) and
 * docs/benchmarks.svg (the chart). Figures are medians. `--no-docs` leaves docs/ alone;
 * `--only=intercept,rewrite` runs only the suites whose file names hold one of the words (and then
 * writes no docs unless `--docs` is given too: a partial run should not replace the full document).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';

const suites = [
  '../packages/elfkit/bench/read.bench.ts',
  '../packages/encoder/bench/encode.bench.ts',
  '../packages/recipe/bench/discover.bench.ts',
  '../packages/recipe/bench/plan.bench.ts',
  '../packages/recipe/bench/rewrite.bench.ts',
  '../packages/recipe/bench/intercept.bench.ts',
];

type Loose = Record<string, unknown> & { name?: string };
interface TargetCheck { goal: string; measured: string; met: boolean }
interface SuiteRun { rel: string; results: Loose[]; targets: TargetCheck[]; seconds: number; extra: Record<string, unknown> }
interface Mod { run: () => Promise<Loose[]>; targets?: (r: Loose[]) => TargetCheck[]; processFloor?: () => unknown }

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const valueOf = (r: Loose): number | undefined => num(r['median']) ?? num(r['ms']) ?? num(r['value']);
const unitOf = (r: Loose): string => (r['unit'] as string | undefined) ?? (r['ms'] !== undefined ? 'ms' : '');

function figure(r: Loose): string {
  if (r['skipped'] !== undefined) return `${r.name}: skipped (${String(r['skipped'])})`;
  const value = valueOf(r);
  const unit = unitOf(r);
  const base = r['baseline'] as Loose | undefined;
  const baseValue = base === undefined ? undefined : valueOf(base);
  let line = `${r.name}: ${value === undefined ? JSON.stringify(r) : `${value.toFixed(2)} ${unit}`}`;
  if (base !== undefined && baseValue !== undefined && value !== undefined) {
    const ratio = unit.endsWith('/s') ? value / baseValue : baseValue / value;
    line += ` | baseline ${base['name']}: ${baseValue.toFixed(2)} ${unit} | ${ratio.toFixed(2)}x ${unit.endsWith('/s') ? 'the baseline' : 'faster than the baseline'}`;
  }
  const xNative = num(r['xNative']);
  const xSeed = num(r['xSeed']);
  if (xNative !== undefined && xSeed !== undefined) line += ` | ${xNative.toFixed(3)}x native, ${xSeed.toFixed(3)}x the seed stub`;
  return line;
}

// ---------------------------------------------------------------------------------------------
// The machine

function readOr(path: string, fallback: string): string {
  try { return readFileSync(path, 'utf8').trim(); } catch { return fallback; }
}

function machine(): { rows: [string, string][]; loadBefore: string } {
  const cpuinfo = readOr('/proc/cpuinfo', '');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.*)$/m.exec(cpuinfo)?.[1];
  const hypervisor = /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo) ? ', virtual machine' : '';
  const vuln = (name: string): string => readOr(`/sys/devices/system/cpu/vulnerabilities/${name}`, 'unknown');
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    // The benchmarks run the sources as they are in the work tree, not as committed.
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages', 'recipes'], { encoding: 'utf8' }).trim();
    if (dirty !== '') commit += ` (work tree: ${dirty.split('\n').length} changed files under packages/ and recipes/ not yet committed)`;
  } catch { /* not a clone */ }
  const rows: [string, string][] = [
    ['CPU', `${model} (${cpus().length} logical CPUs${mhz ? `, ${Number(mhz).toFixed(0)} MHz` : ''}${hypervisor})`],
    ['kernel', `Linux ${release()}`],
    ['node', process.version],
    ['gcc', execOr('gcc', ['-dumpfullversion'])],
    ['objdump', execOr('objdump', ['--version']).split('\n')[0] ?? ''],
    ['vm.mmap_min_addr', readOr('/proc/sys/vm/mmap_min_addr', '?')],
    ['spectre_v2', vuln('spectre_v2')],
    ['spec_rstack_overflow', vuln('spec_rstack_overflow')],
    ['commit', commit],
  ];
  return { rows, loadBefore: loadavg().map((x) => x.toFixed(2)).join(' ') };
}

function execOr(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { encoding: 'utf8' }).trim(); } catch { return 'not found'; }
}

// ---------------------------------------------------------------------------------------------
// The chart: horizontal bars on a log scale, one panel per figure set, hand-written SVG.

interface Bar { label: string; value: number; colour: string; note?: string }
const COLOURS = { native: '#555555', ours: '#2b7bb9', oursPass: '#8cc0e6', other: '#d9822b', objdump: '#999999' };

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** One panel at vertical offset y; returns its SVG and height. */
function panel(y: number, title: string, unit: string, bars: Bar[], width: number, markers: { value: number; label: string }[] = []): { svg: string; height: number } {
  const labelW = 330;
  const valueW = 160;
  const plotW = width - labelW - valueW - 20;
  const rowH = 20;
  const top = y + 40 + markers.length * 11;
  const values = bars.map((b) => b.value).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values))));
  const x = (v: number): number => labelW + (plotW * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const parts: string[] = [];
  parts.push(`<text x="10" y="${y + 20}" class="title">${escapeXml(title)}</text>`);
  const bottom = top + bars.length * rowH;
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const gx = x(d).toFixed(1);
    parts.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${bottom}" class="grid"/>`);
    parts.push(`<text x="${gx}" y="${bottom + 14}" class="tick" text-anchor="middle">${d >= 1 ? d.toLocaleString('en-US') : d} ${escapeXml(unit)}</text>`);
  }
  markers.forEach((mk, i) => {
    const mx = x(mk.value).toFixed(1);
    parts.push(`<line x1="${mx}" y1="${top - 6}" x2="${mx}" y2="${bottom}" class="marker"/>`);
    parts.push(`<text x="${mx}" y="${top - 8 - i * 11}" class="marktext" text-anchor="middle">${escapeXml(mk.label)}</text>`);
  });
  bars.forEach((b, i) => {
    const by = top + i * rowH;
    parts.push(`<text x="${labelW - 8}" y="${by + 14}" class="label" text-anchor="end">${escapeXml(b.label)}</text>`);
    if (!(b.value > 0)) {
      parts.push(`<text x="${labelW + 4}" y="${by + 14}" class="value">${escapeXml(b.note ?? 'skipped')}</text>`);
      return;
    }
    const w = Math.max(1, x(b.value) - labelW);
    parts.push(`<rect x="${labelW}" y="${by + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${b.colour}"><title>${escapeXml(`${b.label}: ${fmt(b.value)} ${unit}`)}</title></rect>`);
    parts.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${by + 14}" class="value">${fmt(b.value)}${b.note ? ` ${escapeXml(b.note)}` : ''}</text>`);
  });
  return { svg: parts.join('\n'), height: bottom + 24 - y };
}

function chart(intercept: Loose[], rewrite: Loose[], subtitle: string): string {
  const width = 900;
  const parts: string[] = [];
  let y = 28;
  if (intercept.length > 0) {
    const bars = intercept.map((r): Bar => {
      const group = r['group'] as string;
      const pass = r['entry'] === 'passthrough';
      const colour = group === 'native' ? COLOURS.native : group === 'libos-patch' ? (pass ? COLOURS.oursPass : COLOURS.ours) : COLOURS.other;
      const xn = num(r['xNative']);
      return { label: String(r['label']), value: r['skipped'] !== undefined ? 0 : valueOf(r) ?? 0, colour, ...(r['skipped'] !== undefined ? { note: 'skipped' } : xn !== undefined ? { note: `(${xn < 0.1 ? xn.toFixed(3) : xn.toFixed(2)}x native)` } : {}) };
    });
    const p = panel(y, 'Interception cost: getppid, CPU ns per call (median of 7, log scale)', 'ns', bars, width);
    parts.push(p.svg);
    y += p.height + 16;
  }
  if (rewrite.length > 0) {
    const bars: Bar[] = [];
    for (const r of rewrite) {
      const label = String(r['label']);
      const warm = (r['warm'] as { median: number }).median;
      const proc = (r['process'] as { median: number }).median;
      const cli = r['cli'] as { median: number } | undefined;
      bars.push({ label: `${label}: libos-patch, warm`, value: warm, colour: COLOURS.ours });
      if (cli) bars.push({ label: `${label}: libos-patch apply (whole command)`, value: cli.median, colour: COLOURS.oursPass });
      bars.push({ label: `${label}: libos-patch, fresh process (work)`, value: valueOf(r)!, colour: COLOURS.oursPass });
      bars.push({ label: `${label}: libos-patch, fresh process (with start)`, value: proc, colour: COLOURS.oursPass });
      bars.push({ label: `${label}: objdump -d`, value: valueOf(r['baseline'] as Loose)!, colour: COLOURS.objdump });
    }
    const p = panel(y, 'Rewriting cost: read + find + plan + rewrite + write (unannotated), ms (log scale)', 'ms', bars, width,
      [{ value: 200, label: 'E9Patch on libc / busybox: 0.2 s' }, { value: 1000, label: 'target for node: 1 s' }]);
    parts.push(p.svg);
    y += p.height + 10;
  }
  const legend = [
    [COLOURS.native, 'native'], [COLOURS.ours, 'libos-patch (hook-only / warm)'], [COLOURS.oursPass, 'libos-patch (passthrough / fresh process)'],
    [COLOURS.other, 'other interception methods'], [COLOURS.objdump, 'objdump -d'],
  ];
  let lx = 10;
  const legendSvg = legend.map(([c, t]) => {
    const item = `<rect x="${lx}" y="${y}" width="10" height="10" fill="${c}"/><text x="${lx + 14}" y="${y + 9}" class="tick">${escapeXml(t!)}</text>`;
    lx += 14 + t!.length * 5.6 + 18; // about 5.6 px a character at 10 px
    return item;
  }).join('\n');
  y += 18;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 20}" viewBox="0 0 ${width} ${y + 20}" font-family="Helvetica, Arial, sans-serif">
<style>
.title { font-size: 14px; font-weight: bold; fill: #222; }
.label { font-size: 11px; fill: #222; }
.value { font-size: 11px; fill: #222; }
.tick { font-size: 10px; fill: #555; }
.grid { stroke: #ddd; stroke-width: 1; }
.sub { font-size: 10px; fill: #666; }
.marker { stroke: #c0392b; stroke-width: 1; stroke-dasharray: 4 3; }
.marktext { font-size: 10px; fill: #c0392b; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="10" y="16" class="sub">${escapeXml(subtitle)}</text>
${parts.join('\n')}
${legendSvg}
</svg>
`;
}

// ---------------------------------------------------------------------------------------------
// The document

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const range = (runs: unknown): string => {
  const xs = Array.isArray(runs) ? (runs as number[]) : [];
  if (xs.length === 0) return '';
  return `${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}`;
};

function interceptSection(results: Loose[]): string[] {
  const lines: string[] = [];
  lines.push('## Interception cost', '');
  lines.push('getppid (a cheap system call) in a tight loop; each method is a small C program under',
    '[packages/recipe/bench/c](../packages/recipe/bench/c), built with `gcc -O2`. The libos-patch rows are the',
    'programs rewritten by the engine (library API) with the recipe named in the detail. "hook-only" entries answer',
    'from a cached value without entering the kernel (`symbol` entry: an asm function in the program, like',
    '`handler_cached` in the reference harness; "C handler": the `handler` entry returning a constant); "passthrough"',
    'makes the real call. Each program times its own loop (count calibrated to about 0.25 s a run); every program',
    'runs once per round for seven rounds. **CPU ns/call** (user + system time of the process, the tracer and its',
    'tracee for ptrace) is the headline figure; wall time also counts the time other processes held the CPU on',
    'this shared machine. Ratios are to the native call and to the seed stub (hook-only) in this run; the targets\'',
    'ratios are the medians of the seven rounds\' own ratios (two programs a round apart in time, not a median of',
    'one taken minutes from the other\'s: the machine\'s speed drifts).', '');
  lines.push('![interception and rewriting cost, log scale](benchmarks.svg)', '');
  lines.push('| method | entry | CPU ns/call, median (min-max) | wall ns/call | x native | x seed stub | loop count | detail |');
  lines.push('|---|---|--:|--:|--:|--:|--:|---|');
  for (const r of results) {
    const wall = r['wall'] as { median: number } | undefined;
    if (r['skipped'] !== undefined) {
      lines.push(`| ${cell(String(r['label']))} | ${r['entry']} | skipped | | | | | ${cell(`${String(r['skipped'])}; ${String(r['detail'])}`)} |`);
      continue;
    }
    lines.push(`| ${cell(String(r['label']))} | ${r['entry']} | ${fmt(valueOf(r)!)} (${range(r['runs'])}) | ${fmt(wall!.median)} | ${num(r['xNative'])!.toFixed(3)} | ${num(r['xSeed'])!.toFixed(3)} | ${Number(r['iterations']).toLocaleString('en-US')} | ${cell(String(r['detail']))} |`);
  }
  lines.push('');
  const get = (label: string): number | undefined => { const r = results.find((x) => x['label'] === label && x['skipped'] === undefined); return r ? valueOf(r) : undefined; };
  const native = get('native syscall');
  const callRet = get('native syscall inside call/ret (control)');
  const pass = get('glibc-rfc (fast stub), passthrough');
  const hook = get('glibc-rfc (fast stub), hook-only');
  const hookNr = get('glibc-rfc (fast stub), nr known, hook-only');
  const called = get('glibc-rfc (fast stub), hook-only, entry called');
  const calledNr = get('glibc-rfc (fast stub), nr known, hook-only, entry called');
  const exactNr = get('glibc-rfc (fast stub), nr known, hook-only, r11 always set');
  const cNr = get('glibc-rfc (fast stub), nr known, C handler');
  const c = get('glibc-rfc (fast stub), C handler');
  const passNr = get('glibc-rfc (fast stub), nr known, passthrough');
  const seed = get('seed stub, hook-only');
  const seedNr = get('seed stub, nr known, hook-only') ?? seed;
  if (hook !== undefined && hookNr !== undefined && seed !== undefined && seedNr !== undefined && calledNr !== undefined && exactNr !== undefined && cNr !== undefined) {
    lines.push(`**Where the stub's time goes.** The fast stub keeps the seed's guarantees (flags, red zone, rcx, r11 = rflags,`,
      'vector registers) but does only the work the code around it needs, each saving proved by decoding',
      '([abi-notes.md](abi-notes.md#savings-that-keep-every-guarantee-proved-by-decoding)). `bench_hook`',
      '(`movq bench_cached(%rip),%rax; ret`) writes no flag and touches no stack, so it is copied into the stub, and no path',
      `after the site reads r11: the stub is that one load and \`jmp *%rcx\`, ${fmt(hookNr)} ns a call with the number known at the`,
      `site (${(seedNr / hookNr).toFixed(1)}x cheaper than the seed's stub, ${fmt(seedNr)} ns, in the same run). With the number only in rax at run time,`,
      `the site's trampoline first checks it against the calls made natively (rt_sigreturn, clone, vfork, clone3: one load from a`,
      `256-byte table by the number's low byte sends the others on) and runs a copy of the stub that resumes with a direct \`jmp\`:`,
      `${fmt(hook)} ns (${(seed / hook).toFixed(1)}x). An entry the stub cannot see through (\`bench_hook_opaque\`: a frame and a branch)`,
      `is called with the red zone stepped over and rcx and the flags saved (\`lahf\`/\`sahf\`, no \`popfq\`, no locked instruction):`,
      `${fmt(calledNr)} ns${called !== undefined ? ` (${fmt(called)} ns with the number checked at run time)` : ''}. Setting r11 = rflags where nothing reads it (\`rcx-r11: exact\`) costs one`,
      `\`pushfq\`: ${fmt(exactNr)} ns against ${fmt(hookNr)} ns. A C handler is called from the stub itself with the syscall's arguments`,
      `moved into the SysV registers; of the six registers the C ABI lets it change, the stub saves those the program can read`,
      `after the site (here all six: the loop's caller may keep values in them, as gcc's -fipa-ra does) and aligns the stack at`,
      `run time: ${fmt(cNr)} ns${c !== undefined ? ` (${fmt(c)} ns with the number checked at run time)` : ''}. On the Xeon of`,
      'shared/reference/stub-costs.md the seed stub costs 32 ns (locked `xchg` and `popfq` are dearer there); on this EPYC they',
      'are cheap, which is why the seed stub is only ~11 ns here.', '');
  }
  if (native !== undefined && callRet !== undefined && pass !== undefined) {
    lines.push(`**Passthrough.** The stub makes the system call itself and resumes with a jump, never a \`ret\`: the shared stub saves`,
      `only rcx (the kernel keeps the flags and sets r11) and ends in \`jmp *%rcx\`; a trampoline's copy saves nothing and jumps back directly.`,
      `${fmt(pass)} ns${passNr !== undefined ? ` (${fmt(passNr)} ns with the number known)` : ''} against the native ${fmt(native)} ns. The control row makes the`,
      `same native call from a function reached by \`call\` and left by \`ret\`, with no stub at all: ${fmt(callRet)} ns, ${fmt(callRet - native)} ns more than`,
      'native. On this CPU the kernel fills the return stack buffer on the way in or out (`spectre_v2: RSB filling`,',
      '`spec_rstack_overflow: Safe RET`, see the machine table), so the first `ret` after a system call is mispredicted: a',
      'passthrough that returns through `ret` after its `syscall` (the seed\'s stub calling a passthrough entry, zpoline\'s hook) pays it.', '');
  }
  return lines;
}

function rewriteSection(results: Loose[], floor: { wallMs: number; peakRssMb: number; nodeMs?: number; cliVersionMs?: number; nodeHereMs?: number; extraCaCerts?: boolean } | undefined): string[] {
  const lines: string[] = [];
  lines.push('## Rewriting cost', '');
  lines.push('readElf + findSites + planPatches + rewriteElf + write with the `unannotated` recipe (every decoded `syscall`,',
    'neighbours displaced to make room) over the system\'s libc.so.6, /bin/busybox and the node executable, beside',
    '`objdump -d` over the same file (output to /dev/null) in the same run. **`libos-patch apply`**: the built command',
    'as a user runs it, run as a command (`packages/cli/bin/libos-patch.js apply --recipe unannotated FILE -o OUT`, the file',
    'npm links as `libos-patch`: its first line starts node on it), timed as',
    'a whole (Node\'s start, loading the CLI, the work, writing the output), with its peak memory and what its',
    '`--timings` line says of the same runs: Node\'s own start (to the bin\'s first line), loading the CLI, loading the command (its engine), then each',
    'stage ("writing" builds the output in memory, "saving" writes it to disk). **Fresh process**: a',
    'new `node` that does the rewrite once through the library API; "work" is timed inside it around the rewrite, "whole',
    'run" is the whole process (Node\'s start and compiling the TypeScript sources through tsx included); peak memory is',
    'its maximum RSS from `/usr/bin/time -v`. **Warm**: the same rewrite repeated in the bench process after a first run',
    '(a tool rewriting many files). Sites per second: sites / warm time.', '');
  if (floor) lines.push(`A fresh process that loads the modules and does nothing takes ${floor.wallMs.toFixed(0)} ms and ${floor.peakRssMb.toFixed(0)} MB here.`, '');
  if (floor?.nodeMs !== undefined && floor.cliVersionMs !== undefined) {
    lines.push(`The floor of the whole command: \`node -e 0\` takes ${floor.nodeMs.toFixed(0)} ms here, and \`libos-patch --version\` (Node's start and`,
      `loading the CLI, no work) ${floor.cliVersionMs.toFixed(0)} ms, of E9Patch's 200 ms for a whole rewrite of libc.so.6 or busybox.`, '');
  }
  if (floor?.extraCaCerts === true && floor.nodeHereMs !== undefined && floor.nodeMs !== undefined) {
    lines.push(`This machine's environment sets NODE_EXTRA_CA_CERTS, and Node then parses that CA bundle and its own root`,
      `certificates before running any JavaScript: \`node -e 0\` takes ${floor.nodeHereMs.toFixed(0)} ms with it, ${floor.nodeMs.toFixed(0)} ms without. libos-patch opens no TLS`,
      'connection, and the bin\'s first line starts node without the variable; the column "`node bin/libos-patch.js`"',
      'gives the command started the other way, by node itself in this environment, paying for it.', '');
  }
  lines.push('| file | sites | `libos-patch apply` ms (min-max) | above `node -e 0` (same rounds) ms | its stages (--timings, medians) | its peak RSS MB | `node bin/libos-patch.js apply` ms | fresh process: work ms (min-max) | fresh process: whole run under tsx ms | peak RSS MB | warm ms (min-max) | warm stages | sites/s | objdump -d ms | objdump peak RSS MB | objdump / fresh work | detail |');
  lines.push('|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|');
  for (const r of results) {
    const warm = r['warm'] as { median: number; runs: number[]; stages: string };
    const proc = r['process'] as { median: number };
    const cli = r['cli'] as { median: number; runs: number[]; peakRssMb: number; stages?: string; overNode?: number } | undefined;
    const direct = r['direct'] as { median: number } | undefined;
    const base = r['baseline'] as Loose & { peakRssMb?: number };
    const sites = Number(r['sites']);
    lines.push(`| ${r['label']} | ${sites} | ${cli ? `${fmt(cli.median)} (${range(cli.runs)})` : '?'} | ${cli?.overNode !== undefined ? fmt(cli.overNode) : '?'} | ${cli?.stages ?? '?'} | ${cli ? fmt(cli.peakRssMb) : '?'} | ${direct ? fmt(direct.median) : '?'} | ${fmt(valueOf(r)!)} (${range(r['runs'])}) | ${fmt(proc.median)} | ${fmt(num(r['peakRssMb'])!)} | ${fmt(warm.median)} (${range(warm.runs)}) | ${warm.stages} | ${sites > 0 ? fmt(num(r['sitesPerSecond'])!) : 'n/a'} | ${fmt(valueOf(base)!)} (${(base['runs'] as number[]).length} run${(base['runs'] as number[]).length > 1 ? 's' : ''}) | ${base.peakRssMb !== undefined ? fmt(base.peakRssMb) : '?'} | ${(valueOf(base)! / valueOf(r)!).toFixed(1)}x | ${cell(String(r['detail']))} |`);
  }
  lines.push('');
  return lines;
}

function genericSection(run: SuiteRun): string[] {
  const lines: string[] = [`### ${run.rel.replace('../packages/', '')}`, ''];
  lines.push('| benchmark | median | baseline (same run) | baseline median | ratio | detail |');
  lines.push('|---|--:|---|--:|--:|---|');
  for (const r of run.results) {
    const v = valueOf(r);
    const unit = unitOf(r);
    const base = r['baseline'] as Loose | undefined;
    const bv = base ? valueOf(base) : undefined;
    const ratio = v !== undefined && bv !== undefined ? (unit.endsWith('/s') ? `${(v / bv).toFixed(2)}x the baseline` : `${(bv / v).toFixed(2)}x faster`) : '';
    const value = (x: number | undefined): string => (x === undefined ? '' : unit.endsWith('/s') ? `${Math.round(x).toLocaleString('en-US')} ${unit}` : `${fmt(x)} ${unit}`);
    lines.push(`| ${cell(String(r.name))} | ${value(v)} | ${cell(String(base?.['name'] ?? ''))} | ${value(bv)} | ${ratio} | ${cell(String(r['detail'] ?? ''))} |`);
  }
  lines.push('');
  return lines;
}

function document(runs: SuiteRun[], m: ReturnType<typeof machine>, loadAfter: string, totalSeconds: number, failures: string[]): string {
  const intercept = runs.find((r) => r.rel.endsWith('intercept.bench.ts'));
  const rewrite = runs.find((r) => r.rel.endsWith('rewrite.bench.ts'));
  const lines: string[] = [];
  lines.push('# Benchmarks', '');
  lines.push('Written by `npm run bench` ([scripts/bench.ts](../scripts/bench.ts)) from one run on the machine below; every',
    'figure is a median of several runs, every ratio is between figures of the same run. Nothing here is a pass/fail',
    'test. Run it again to get this machine\'s figures for yours; one suite alone prints its figures without touching',
    'this file: `node --conditions=libos-source --import tsx packages/recipe/bench/intercept.bench.ts` (or',
    '`rewrite.bench.ts`, ...), or `npm run bench -- --only=intercept`.', '');
  lines.push(`Run: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}, ${totalSeconds.toFixed(0)} s in all. Load average (1, 5, 15 min) before: ${m.loadBefore}; after: ${loadAfter}`,
    '(a 2-CPU machine shared with other developers\' test runs: expect noise, trust the ratios more than the absolute figures).',);
  lines.push(`Time each suite took: ${runs.map((r) => `${r.rel.replace('../packages/', '')} ${r.seconds.toFixed(0)} s`).join(', ')}.`, '');
  for (const f of failures) lines.push(`**Failed in this run:** ${cell(f)}`, '');
  lines.push('| machine | |', '|---|---|');
  for (const [k, v] of m.rows) lines.push(`| ${k} | ${cell(v)} |`);
  lines.push('');
  const allTargets = runs.flatMap((r) => r.targets);
  if (allTargets.length > 0) {
    lines.push('## Targets (issue 8)', '');
    lines.push('| goal | measured here | met |', '|---|---|---|');
    for (const t of allTargets) lines.push(`| ${cell(t.goal)} | ${cell(t.measured)} | ${t.met ? 'yes' : '**no**'} |`);
    lines.push('');
  }
  if (intercept) lines.push(...interceptSection(intercept.results));
  if (rewrite) lines.push(...rewriteSection(rewrite.results, rewrite.extra['floor'] as Parameters<typeof rewriteSection>[1]));
  const others = runs.filter((r) => r !== intercept && r !== rewrite);
  if (others.length > 0) {
    lines.push('## Other benchmarks', '');
    for (const r of others) lines.push(...genericSection(r));
  }
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}

// ---------------------------------------------------------------------------------------------

const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',').filter(Boolean);
const writeDocs = !process.argv.includes('--no-docs') && (only === undefined || process.argv.includes('--docs'));
const m = machine();
const started = performance.now();
const runs: SuiteRun[] = [];
const failures: string[] = [];
for (const rel of suites) {
  const url = new URL(rel, import.meta.url);
  if (!existsSync(fileURLToPath(url))) continue;
  if (only !== undefined && !only.some((w) => rel.includes(w))) continue;
  process.stdout.write(`\n== ${rel.replace('../packages/', '')}\n`);
  const t0 = performance.now();
  let mod: Mod;
  let results: Loose[];
  try {
    mod = (await import(url.href)) as Mod;
    results = await mod.run();
  } catch (error) {
    // One broken suite should not cost the others' figures: report it and go on.
    const message = error instanceof Error ? error.message : String(error);
    process.stdout.write(`FAILED: ${message}\n`);
    failures.push(`${rel.replace('../packages/', '')}: ${message.split('\n')[0]}`);
    continue;
  }
  for (const r of results) process.stdout.write(`${figure(r)}\n`);
  const targets = mod.targets?.(results) ?? [];
  for (const t of targets) process.stdout.write(`target ${t.met ? 'met' : 'NOT met'}: ${t.goal}: ${t.measured}\n`);
  const extra: Record<string, unknown> = {};
  if (mod.processFloor) extra['floor'] = mod.processFloor();
  runs.push({ rel, results, targets, seconds: (performance.now() - t0) / 1000, extra });
}
const totalSeconds = (performance.now() - started) / 1000;
process.stdout.write(`\nall benchmarks: ${totalSeconds.toFixed(0)} s\n`);

if (writeDocs) {
  const md = new URL('../docs/benchmarks.md', import.meta.url);
  const svg = new URL('../docs/benchmarks.svg', import.meta.url);
  const loadAfter = loadavg().map((x) => x.toFixed(2)).join(' ');
  writeFileSync(md, document(runs, m, loadAfter, totalSeconds, failures));
  const intercept = runs.find((r) => r.rel.endsWith('intercept.bench.ts'))?.results ?? [];
  const rewrite = runs.find((r) => r.rel.endsWith('rewrite.bench.ts'))?.results ?? [];
  const cpu = m.rows[0]![1];
  writeFileSync(svg, chart(intercept, rewrite, `${cpu}, Linux ${release()}, node ${process.version}`));
  process.stdout.write(`wrote ${fileURLToPath(md)} and ${fileURLToPath(svg)}\n`);
}
if (failures.length > 0) {
  process.stdout.write(`${failures.length} suite(s) failed:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
  process.exitCode = 1;
}
