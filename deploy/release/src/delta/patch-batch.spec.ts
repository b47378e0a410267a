import { CommandRunner } from '@cowroot/device';
import { BATCH_CAPS, PatchBatch, batchCapsWithin } from './patch-batch';
import { PatchEncoder, patchWindowLog } from './patch-encoder';

const MiB = 1024 * 1024;

describe(PatchBatch.name, () => {
  const batch = (caps = BATCH_CAPS) =>
    new PatchBatch(
      '/nonexistent',
      '/nonexistent/batch',
      new PatchEncoder(new CommandRunner()),
      async () => undefined,
      caps,
    );

  it('closes at the caps it is given, sources counted once', () => {
    const small = batch({ memberBytes: MiB, targetBytes: 2 * MiB, sourceBytes: 3 * MiB });
    expect(small.fits(2 * MiB)).toBe(true);
    expect(small.fits(2 * MiB + 1)).toBe(false);
    const source = { path: 'usr/lib/a', size: 2 * MiB, sha256: '00' };
    expect(small.fitsSource(source)).toBe(true);
    small.startMember(source, true);
    // the same source again costs nothing; another of the same size no longer fits
    expect(small.fitsSource(source)).toBe(true);
    expect(small.fitsSource({ ...source, path: 'usr/lib/b' })).toBe(false);
    expect(small.fitsSource({ ...source, path: 'usr/lib/b', size: MiB })).toBe(true);
    // the defaults: 4 MiB of stream, 4 MiB of sources
    expect(batch().fits(4 * MiB)).toBe(true);
    expect(batch().fits(4 * MiB + 1)).toBe(false);
  });

  it('keeps a full batch within the window the writer may use', () => {
    // the defaults need a 2^24 window at most: what the device accepts by default (2^27) holds them
    expect(patchWindowLog(BATCH_CAPS.targetBytes + BATCH_CAPS.sourceBytes, 0)).toBe(24);
    expect(batchCapsWithin(BATCH_CAPS, 27)).toEqual(BATCH_CAPS);
    expect(batchCapsWithin(BATCH_CAPS, 24)).toEqual(BATCH_CAPS);
    // a smaller cap (--delta-window-log) cuts them to a quarter of its window each, members with them
    const cut = batchCapsWithin(BATCH_CAPS, 22);
    expect(cut).toEqual({ targetBytes: MiB, sourceBytes: MiB, memberBytes: MiB });
    expect(patchWindowLog(cut.targetBytes + cut.sourceBytes, 0)).toBeLessThanOrEqual(22);
    expect(batchCapsWithin(BATCH_CAPS, 20).memberBytes).toBe(MiB / 4);
    // larger caps (BENCH_COMPARE_CAPS) within 2^27 stay as given
    const large = { memberBytes: MiB, targetBytes: 8 * MiB, sourceBytes: 8 * MiB };
    expect(batchCapsWithin(large, 27)).toEqual(large);
  });
});
