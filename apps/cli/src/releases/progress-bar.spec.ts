import { PassThrough } from 'node:stream';
import { formatBytes, ProgressBar } from './progress-bar';

function stream(isTTY: boolean): { out: PassThrough & { isTTY?: boolean }; text: () => string } {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean };
  out.isTTY = isTTY;
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { out, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe(ProgressBar.name, () => {
  it('writes a line per 10 % when stderr is not a terminal (CI logs stay short)', () => {
    const { out, text } = stream(false);
    const bar = new ProgressBar(out, 'a.zst', 1000);
    for (let bytes = 0; bytes <= 1000; bytes += 10) bar.set(bytes);
    bar.finish('uploaded');
    const lines = text().trimEnd().split('\n');
    expect(lines).toHaveLength(12); // 0 %, 10 % … 100 %, and the final note
    expect(lines[5]).toMatch(/^a\.zst {2}\[#{12}\.{12}\] {2}50% {2}500 B \/ 1000 B/);
    expect(lines[11]).toBe('a.zst  uploaded');
  });

  it('redraws one line in place on a terminal, at most every 100 ms', () => {
    const { out, text } = stream(true);
    const bar = new ProgressBar(out, 'a.zst', 1000, 400);
    for (let bytes = 400; bytes <= 1000; bytes += 1) bar.set(bytes);
    bar.finish('uploaded');
    const output = text();
    expect(output.split('\r\x1b[2K').length).toBeLessThanOrEqual(4);
    expect(output.endsWith('\r\x1b[2Ka.zst  uploaded\n')).toBe(true);
    expect(output).not.toContain('\n\r');
  });

  it('starts at the resume offset', () => {
    const { out } = stream(false);
    expect(new ProgressBar(out, 'f', 2048, 1024).render()).toMatch(/ 50% {2}1\.0 KiB \/ 2\.0 KiB/);
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect([
      formatBytes(0),
      formatBytes(1023),
      formatBytes(1536),
      formatBytes(64 * 1024 ** 2),
      formatBytes(3 * 1024 ** 4),
    ]).toEqual(['0 B', '1023 B', '1.5 KiB', '64.0 MiB', '3.0 TiB']);
  });
});
