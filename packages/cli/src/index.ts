export { main, VERSION } from './bin.js';
export { COMMANDS } from './command-list.js';
export type { CommandEntry } from './command-list.js';
export type { Command, CommandContext, CommandIo } from './command.js';
export { CliError, EXIT, isCliError } from './errors.js';
export type { CliErrorCode, ExitStatus } from './errors.js';
export { parseEntry, formatEntry } from './args.js';
export { DISCOVERY_RULES } from './plan-sites.js';
