/**
 * A one-line progress bar on stderr. It appears only on a TTY and only once the work has taken
 * more than a second, so quick runs and pipes never see it; `done()` erases it.
 */
export interface Progress {
  /** Name the current stage and how far the whole job is, from 0 to 1. */
  stage(label: string, fraction: number): void;
  /** Erase the bar (if it was drawn). */
  done(): void;
}

const DELAY_MS = 1000;
const WIDTH = 24;

/** A progress bar that draws nothing. */
export const silentProgress: Progress = { stage() {}, done() {} };

/** A progress bar on `stream` when it is a TTY, else {@link silentProgress}; `delayMs` is for tests. */
export function createProgress(
  stream: { isTTY?: boolean; write(s: string): unknown },
  enabled = true,
  options: { delayMs?: number } = {},
): Progress {
  if (!enabled || !stream.isTTY) return silentProgress;
  const delayMs = options.delayMs ?? DELAY_MS;
  const started = Date.now();
  let label = '';
  let fraction = 0;
  let drawn = false;
  const draw = (): void => {
    if (Date.now() - started < delayMs) return;
    const filled = Math.round(Math.min(1, Math.max(0, fraction)) * WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
    stream.write(`\r\x1b[2K[${bar}] ${Math.round(fraction * 100)}% ${label}`);
    drawn = true;
  };
  // Engine stages are synchronous; the timer only fires between them or while awaiting the planner.
  const timer = setInterval(draw, 200);
  timer.unref();
  return {
    stage(nextLabel, nextFraction) {
      label = nextLabel;
      fraction = nextFraction;
      draw();
    },
    done() {
      clearInterval(timer);
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
