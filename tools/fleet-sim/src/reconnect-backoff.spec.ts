import { ReconnectBackoff } from './reconnect-backoff';

describe(ReconnectBackoff.name, () => {
  it('doubles the ceiling per consecutive failure up to maxMs', () => {
    const highest = new ReconnectBackoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6].map(() => highest.failed())).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('draws within [ceiling/2, ceiling]: two devices failing together wait different times', () => {
    const lowest = new ReconnectBackoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    expect([1, 2, 3, 4, 5].map(() => lowest.failed())).toEqual([50, 100, 200, 400, 500]);
    const draws = [0.1, 0.9];
    const [a, b] = draws.map((r) => new ReconnectBackoff({ baseMs: 1000, random: () => r }).failed());
    expect(a).toBe(550);
    expect(b).toBe(950);
  });

  it('starts again from baseMs after a success', () => {
    const backoff = new ReconnectBackoff({ baseMs: 100, maxMs: 10_000, random: () => 0.999999 });
    backoff.failed();
    backoff.failed();
    expect(backoff.attempts).toBe(2);
    backoff.succeeded();
    expect(backoff.attempts).toBe(0);
    expect(backoff.failed()).toBe(100);
  });

  it('stays finite after very many failures', () => {
    const backoff = new ReconnectBackoff({ baseMs: 100, maxMs: 2000, random: () => 0.5 });
    let last = 0;
    for (let i = 0; i < 2000; i++) last = backoff.failed();
    expect(last).toBe(1500);
  });

  it('refuses settings that make no delay', () => {
    expect(() => new ReconnectBackoff({ baseMs: 0 })).toThrow(/baseMs/);
    expect(() => new ReconnectBackoff({ baseMs: 500, maxMs: 100 })).toThrow(/baseMs <= maxMs/);
  });
});
