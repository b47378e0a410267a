import type { OutputStream } from '../cli-context';

const BAR_WIDTH = 24;
const REDRAW_MS = 100;

/** 1536 → "1.5 KiB" */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Upload progress on stderr. On a terminal one line redrawn in place (at most every 100 ms); elsewhere
 * (CI logs) a line per 10 % so logs stay short.
 */
export class ProgressBar {
  private done = 0;
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly startedAt = Date.now();
  private readonly startOffset: number;

  constructor(
    private readonly stream: OutputStream,
    private readonly label: string,
    private readonly total: number,
    startAt = 0,
  ) {
    this.done = startAt;
    this.startOffset = startAt;
  }

  set(bytes: number): void {
    this.done = Math.min(bytes, this.total);
    this.draw(false);
  }

  finish(note: string): void {
    this.done = this.total;
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K`);
    this.stream.write(`${this.label}  ${note}\n`);
  }

  /** Clears the in-place line so an error message starts on a clean line. */
  abandon(): void {
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K`);
  }

  render(): string {
    const ratio = this.total === 0 ? 1 : this.done / this.total;
    const filled = Math.round(ratio * BAR_WIDTH);
    const seconds = (Date.now() - this.startedAt) / 1000;
    const rate = seconds > 0 ? (this.done - this.startOffset) / seconds : 0;
    return `${this.label}  [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%  ${formatBytes(this.done)} / ${formatBytes(this.total)}  ${formatBytes(rate)}/s`;
  }

  private draw(force: boolean): void {
    if (this.stream.isTTY) {
      const now = Date.now();
      if (!force && now - this.lastDraw < REDRAW_MS) return;
      this.lastDraw = now;
      this.stream.write(`\r\x1b[2K${this.render()}`);
      return;
    }
    const decile = this.total === 0 ? 10 : Math.floor((this.done / this.total) * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.stream.write(`${this.render()}\n`);
    }
  }
}
