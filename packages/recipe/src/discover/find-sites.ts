import type { ElfFile, SyscallAnnotation } from '@libos/elfkit';
import type { MatchRule, Site } from '../model.js';
import { ANNOTATION_TABLES, annotationSites } from './annotation-sites.js';
import { DiscoverContext } from './discover-context.js';
import { instructionSites } from './instruction-sites.js';
import { releaseSharedDecoders } from '../analyze/iced.js';
import { type RawSite, numberOf, passesRule, resolveSyscalls } from './site-filter.js';
import type { FindSitesOptions, SiteReport } from './site-report.js';

/**
 * Finds the system call sites of `elf` that `rules` select. Rules combine as a union: a site several
 * rules find is reported once, labelled with the first rule (in order) that found it. `int $0x80` and
 * `sysenter` (32-bit ABI) go to `reported`, never to `sites`. Problems come back as diagnostics.
 */
export function findSites(elf: ElfFile, rules: readonly MatchRule[], options: FindSitesOptions = {}): SiteReport {
  try {
    return searchSites(elf, rules, options);
  } finally {
    // The look-backs for syscall numbers decode through a shared window of the file: let go of it.
    releaseSharedDecoders();
  }
}

function searchSites(elf: ElfFile, rules: readonly MatchRule[], options: FindSitesOptions): SiteReport {
  const ctx = new DiscoverContext(elf, options);
  const sites = new Map<bigint, Site>();
  const reported = new Map<bigint, Site>();
  let annotations: readonly SyscallAnnotation[] | undefined;
  let decoded: RawSite[] | undefined;
  // Each source is read once per call, however many rules use it.
  const annotated = new Map<string, RawSite[]>();

  rules.forEach((rule, ruleIndex) => {
    const prefix = `match[${ruleIndex}]`;
    if ((rule.annotation === undefined) === (rule.instruction === undefined)) {
      ctx.diagnostics.push({ code: 'DISCOVER_RULE_INVALID', message: `${prefix}: a rule needs exactly one of annotation and instruction` });
      return;
    }
    let raws: RawSite[];
    let label: string;
    if (rule.annotation !== undefined) {
      label = `${prefix}: annotation ${rule.annotation}`;
      if (ANNOTATION_TABLES[rule.annotation] === undefined) {
        ctx.diagnostics.push({ code: 'DISCOVER_RULE_INVALID', message: `${prefix}: unknown annotation table '${rule.annotation}' (known: ${Object.keys(ANNOTATION_TABLES).join(', ')})` });
        return;
      }
      if (annotations === undefined) {
        try {
          annotations = elf.syscallAnnotations();
        } catch (e) {
          annotations = [];
          ctx.diagnostics.push({ code: 'DISCOVER_ANNOTATION_TABLE', message: `the annotation tables cannot be read: ${(e as Error).message}` });
        }
      }
      const table = rule.annotation;
      raws = annotated.get(table) ?? annotationSites(ctx, table, annotations);
      annotated.set(table, raws);
    } else {
      label = `${prefix}: instruction ${rule.instruction ?? 'syscall'}`;
      decoded ??= instructionSites(ctx);
      raws = decoded;
    }
    const syscalls = resolveSyscalls(rule.syscalls, prefix, ctx.diagnostics);
    for (const raw of raws) {
      const isSyscall = raw.instruction === 'syscall';
      const into = isSyscall ? sites : reported;
      if (into.has(raw.va)) continue;
      // 32-bit entries are reported wherever the rule's scope reaches; number filters speak of the 64-bit table.
      const scoped = isSyscall ? rule : { ...(rule.sections ? { sections: rule.sections } : {}), ...(rule.symbols ? { symbols: rule.symbols } : {}) };
      if (!passesRule(elf, raw, scoped, isSyscall ? syscalls : undefined)) continue;
      into.set(raw.va, toSite(elf, raw, label, ruleIndex, isSyscall && rule.precededBy === 'mov-eax-imm'));
    }
  });

  return {
    sites: sortByVa([...sites.values()]),
    reported: sortByVa([...reported.values()]),
    diagnostics: ctx.diagnostics,
    stats: ctx.stats,
    analyses: ctx.analyses,
  };
}

function toSite(elf: ElfFile, raw: RawSite, rule: string, ruleIndex: number, withMov: boolean): Site {
  const site: Site = {
    va: raw.va, offset: raw.offset, length: raw.length, room: raw.room, instruction: raw.instruction,
    section: raw.section, rule, ruleIndex,
  };
  if (raw.fn !== undefined) {
    if (raw.fn.name !== undefined) site.symbol = raw.fn.name;
    site.functionStart = raw.fn.start;
    site.functionEnd = raw.fn.end;
  }
  if (raw.instruction === 'syscall') {
    const number = numberOf(elf, raw);
    if (number !== undefined) {
      site.syscallNr = number.nr;
      if (withMov && number.movEaxImmediatelyBefore) site.movVa = number.writerVa;
    }
  }
  return site;
}

function sortByVa(list: Site[]): Site[] {
  return list.sort((a, b) => (a.va < b.va ? -1 : a.va > b.va ? 1 : 0));
}
