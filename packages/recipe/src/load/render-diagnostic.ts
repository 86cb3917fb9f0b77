import type { RecipeDiagnostic } from '../errors.js';

/**
 * A diagnostic as a terminal shows it: the `file:line:col: message` line, then the offending line of
 * the recipe with a caret under the column (as yaml's prettyErrors does). Without the text, or for a
 * diagnostic without a position, only the first line.
 */
export function renderRecipeDiagnostic(diagnostic: RecipeDiagnostic, text?: string): string {
  const head = `${diagnostic.severity === 'warning' ? 'warning: ' : ''}${diagnostic.toString()}`;
  if (text === undefined || diagnostic.line === 0) return head;
  const source = text.split(/\r?\n/)[diagnostic.line - 1];
  if (source === undefined) return head;
  const gutter = String(diagnostic.line);
  // Tabs keep their width in the caret line, so the caret stays under the column in any terminal.
  const lead = source.slice(0, diagnostic.col - 1).replace(/[^\t]/g, ' ');
  return `${head}\n  ${gutter} | ${source}\n  ${' '.repeat(gutter.length)} | ${lead}^`;
}
