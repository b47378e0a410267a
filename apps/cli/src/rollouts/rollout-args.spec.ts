import { CliError } from '../cli-error';
import { ExitCode } from '../exit-codes';
import { parseAbortRule } from './abort-rule';
import { formatDuration, parseDuration } from './duration';
import { parseSelector } from './target-selector';
import { describeWaveSize, parsePercent, parseWave, validateWaves, waveRequest } from './wave-spec';

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.Usage);
    return (error as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('parseWave', () => {
  it('reads device counts and percentages', () => {
    expect(parseWave('1').size).toEqual({ kind: 'count', value: 1 });
    expect(parseWave('5%').size).toEqual({ kind: 'percent', value: 5 });
    expect(parseWave('0.5%').size).toEqual({ kind: 'percent', value: 0.5 });
    expect(parseWave('100%').size).toEqual({ kind: 'percent', value: 100 });
  });

  it('reads per-wave options and falls back to the defaults for the rest', () => {
    expect(
      parseWave('25%,success=90%,soak=1h,approval', { successPercent: 100, timeoutSeconds: 1800, soakSeconds: 60 }),
    ).toEqual({
      size: { kind: 'percent', value: 25 },
      successPercent: 90,
      timeoutSeconds: 1800,
      soakSeconds: 3600,
      requiresApproval: true,
    });
    expect(parseWave('1,timeout=15m')).toEqual({
      size: { kind: 'count', value: 1 },
      timeoutSeconds: 900,
      requiresApproval: false,
      successPercent: undefined,
      soakSeconds: undefined,
    });
  });

  it.each([
    '0',
    '0%',
    '101%',
    '-1',
    'five',
    '5%%',
    '',
    '5%,bogus=1',
    '5%,success=0',
    '5%,timeout=0s',
    '5%,success=90%,success=95%',
    '5%,approval=yes',
  ])('refuses %j as a usage error', (text) => {
    usageError(() => parseWave(text));
  });
});

describe('waveRequest', () => {
  it("maps to the server's WaveDto: count or percent, the default timeout when the wave has none", () => {
    expect(waveRequest(parseWave('1'), 3600)).toEqual({ count: 1, timeoutSeconds: 3600, requiresApproval: false });
    expect(waveRequest(parseWave('5%,success=90%,timeout=10m,soak=1h,approval'), 3600)).toEqual({
      percent: 5,
      successPercent: 90,
      timeoutSeconds: 600,
      soakSeconds: 3600,
      requiresApproval: true,
    });
  });
});

describe('validateWaves', () => {
  const waves = (...sizes: string[]) => sizes.map((size) => parseWave(size));

  it('accepts the canary pattern 1, 5%, 25%, 100%', () => {
    expect(() => validateWaves(waves('1', '5%', '25%', '100%'))).not.toThrow();
  });

  it('needs at least one wave', () => {
    expect(usageError(() => validateWaves([]))).toContain('--wave');
  });

  it('refuses shrinking cumulative sizes and waves after 100%', () => {
    expect(usageError(() => validateWaves(waves('10%', '5%')))).toContain('cumulative');
    expect(usageError(() => validateWaves(waves('10', '10')))).toContain('cumulative');
    expect(usageError(() => validateWaves(waves('100%', '5')))).toContain('empty');
  });

  it('describes sizes for tables', () => {
    expect([
      describeWaveSize({ kind: 'count', value: 1 }),
      describeWaveSize({ kind: 'count', value: 3 }),
      describeWaveSize({ kind: 'percent', value: 5 }),
    ]).toEqual(['1 device', '3 devices', '5%']);
  });
});

describe('parseAbortRule', () => {
  it('reads kind, threshold, minimum and action', () => {
    expect(parseAbortRule('any:10%:min=5:revert')).toEqual({
      kind: 'any',
      thresholdPercent: 10,
      minExecuted: 5,
      action: 'revert',
    });
    expect(parseAbortRule('health:20%')).toEqual({
      kind: 'health-check',
      thresholdPercent: 20,
      minExecuted: 1,
      action: 'pause',
    });
    expect(parseAbortRule('fallback:1%:pause').kind).toBe('bootloader');
    expect(parseAbortRule('download:50').kind).toBe('download');
    expect(parseAbortRule('timeout:5%').kind).toBe('timeout');
  });

  it.each(['nope:10%', 'any', 'any:0%', 'any:10%:min=0', 'any:10%:explode'])('refuses %j', (text) => {
    usageError(() => parseAbortRule(text));
  });
});

describe('parseSelector', () => {
  it('combines tags, ids and filters (all must hold, as on the server)', () => {
    expect(
      parseSelector({
        tag: ['canary', 'site=berlin', 'canary'],
        filter: ['release=base@1.0', 'online=true', 'id-prefix=gw-'],
      }),
    ).toEqual({
      tags: ['canary', 'site=berlin'],
      filter: { bootedRelease: 'base@1.0', online: true, idPrefix: 'gw-' },
    });
    expect(parseSelector({ device: ['gw-1', 'gw-2'] })).toEqual({ deviceIds: ['gw-1', 'gw-2'] });
    expect(parseSelector({ allDevices: true })).toEqual({ all: true });
  });

  it('never turns an empty selector into the whole fleet', () => {
    expect(usageError(() => parseSelector({}))).toContain('--all-devices');
  });

  it.each([
    [{ allDevices: true, tag: ['x'] }],
    [{ device: ['a', 'a'] }],
    [{ filter: ['colour=red'] }],
    [{ filter: ['online=maybe'] }],
    [{ filter: ['release='] }],
    [{ filter: ['online=true', 'online=false'] }],
  ])('refuses %j', (args) => {
    usageError(() => parseSelector(args));
  });
});

describe('parseDuration', () => {
  it('reads plain seconds and unit sequences', () => {
    expect([
      parseDuration('90', 'x'),
      parseDuration('30s', 'x'),
      parseDuration('15m', 'x'),
      parseDuration('2h', 'x'),
      parseDuration('1d', 'x'),
      parseDuration('1h30m', 'x'),
    ]).toEqual([90, 30, 900, 7200, 86400, 5400]);
  });

  it.each(['', 'h', '1x', '1h 30m', '-5m', '1.5h'])('refuses %j', (text) => {
    usageError(() => parseDuration(text, 'soak'));
  });

  it('formats back', () => {
    expect([formatDuration(5400), formatDuration(0), formatDuration(59), formatDuration(90061)]).toEqual([
      '1h30m',
      '0s',
      '59s',
      '1d1h1m1s',
    ]);
  });
});

describe('parsePercent', () => {
  it('accepts with and without the sign', () => {
    expect([parsePercent('95%', 'x'), parsePercent('95', 'x'), parsePercent('99.5%', 'x')]).toEqual([95, 95, 99.5]);
  });
});
