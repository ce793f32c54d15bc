// Progress bars (cli-progress) for the commands that run long on many rules:
// import, export, rule ls. Drawn on stderr and only when it is a terminal
// (main.ts decides), so stdout, --json and anything piped stay clean.
import { Presets, SingleBar } from 'cli-progress';
import type { CliIo } from './context';

/** A command shows a progress bar (on a terminal) from this many rules. */
export const PROGRESS_MIN_RULES = 10_000;

/** One step of a bar: a phase label, how far, and how to show it. */
export interface BarStep {
  /** Phase name, padded so the bars of one command line up ("uploading "). */
  readonly label: string;
  readonly done: number;
  readonly total: number;
  /** "done/total" in the unit shown, e.g. "1.5/9.8 MiB" or "300/12000 rules". */
  readonly shown: string;
  /** Appended after `shown`, e.g. what happens once the bar is full. */
  readonly note?: string;
}

/**
 * A bar that starts anew whenever the phase changes; a null-object when
 * there is no terminal to draw on, so callers need not ask.
 */
export class PhaseBar {
  private bar: SingleBar | null = null;
  private label: string | null = null;

  constructor(private readonly stream: NodeJS.WritableStream | null) {}

  get drawn(): boolean {
    return this.stream !== null;
  }

  update(step: BarStep): void {
    if (this.stream === null) return;
    const payload = { shown: step.shown, note: step.note ?? '' };
    if (this.bar === null || this.label !== step.label) {
      this.bar?.stop();
      this.label = step.label;
      this.bar = new SingleBar(
        {
          stream: this.stream,
          format: `${step.label} |{bar}| {percentage}% | {shown}{note}`,
          hideCursor: true,
          clearOnComplete: false,
          fps: 10,
        },
        Presets.shades_classic,
      );
      this.bar.start(step.total, step.done, payload);
      return;
    }
    this.bar.setTotal(step.total);
    this.bar.update(step.done, payload);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
    this.label = null;
  }
}

/**
 * Where a command whose output is the rules themselves (export, rule ls)
 * may draw: stderr on a terminal while stdout goes elsewhere (a file, a
 * pipe). On a terminal stdout the rules scrolling by are the progress, and
 * a bar would be drawn among them.
 */
export function barStreamBesideOutput(io: CliIo): NodeJS.WritableStream | null {
  return io.stdoutIsTerminal === true ? null : io.progress;
}

export function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
