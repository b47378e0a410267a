import { MetricsService } from '../metrics/metrics.service';
import { LOGIN_THROTTLE, LoginChannel, LoginFailure, LoginThrottle } from './login-throttle';

describe(LoginThrottle.name, () => {
  let now = 1_000_000;
  let metrics: MetricsService;
  let throttle: LoginThrottle;

  beforeEach(() => {
    now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    metrics = new MetricsService();
    throttle = new LoginThrottle(metrics);
  });

  afterEach(() => jest.restoreAllMocks());

  const failures = async () => (await metrics.registry.getSingleMetric('cowroot_auth_failures_total')!.get()).values;

  it('lets a source fail `burst` times, then refuses until a token is refilled', () => {
    const attempt = { channel: LoginChannel.RestBearer, source: '10.0.0.1' };
    for (let i = 0; i < LOGIN_THROTTLE.source.burst; i++) {
      expect(throttle.admit(attempt)).toBe(0);
      throttle.fail(attempt, LoginFailure.UnknownToken);
    }
    expect(throttle.admit(attempt)).toBe(Math.ceil(1 / LOGIN_THROTTLE.source.refillPerSecond));
    // another source is not affected
    expect(throttle.admit({ ...attempt, source: '10.0.0.2' })).toBe(0);
    now += (1 / LOGIN_THROTTLE.source.refillPerSecond) * 1000;
    expect(throttle.admit(attempt)).toBe(0);
  });

  it('never throttles a clean source, however many logins it has in flight (a fleet behind one NAT)', () => {
    const attempts = Array.from({ length: 1000 }, () => ({ channel: LoginChannel.Mqtt, source: '10.0.0.9' }));
    expect(attempts.map((attempt) => throttle.admit(attempt)).filter((wait) => wait === 0)).toHaveLength(1000);
    for (const attempt of attempts) throttle.refund(attempt);
    expect(throttle.admit({ channel: LoginChannel.Mqtt, source: '10.0.0.9' })).toBe(0);
  });

  it('once a source has failed, admits no more concurrent attempts than its tokens left', () => {
    const first = { channel: LoginChannel.Mqtt, source: '10.0.0.8' };
    throttle.admit(first);
    throttle.fail(first, LoginFailure.WrongCredential);
    const attempts = Array.from({ length: 100 }, () => ({ channel: LoginChannel.Mqtt, source: '10.0.0.8' }));
    const admitted = attempts.filter((attempt) => throttle.admit(attempt) === 0);
    expect(admitted).toHaveLength(LOGIN_THROTTLE.source.burst - 1);
    // successes give their tokens back
    for (const attempt of admitted) throttle.refund(attempt);
    expect(throttle.admit({ channel: LoginChannel.Mqtt, source: '10.0.0.8' })).toBe(0);
  });

  it('throttles an identity across sources and channels', () => {
    for (let i = 0; i < LOGIN_THROTTLE.identity.burst; i++) {
      const attempt = { channel: LoginChannel.Mqtt, source: `10.1.0.${i}`, identity: 'gw-1' };
      expect(throttle.admit(attempt)).toBe(0);
      throttle.fail(attempt, LoginFailure.WrongCredential);
    }
    expect(throttle.admit({ channel: LoginChannel.HttpBasic, source: '10.9.9.9', identity: 'gw-1' })).toBeGreaterThan(
      0,
    );
    expect(throttle.admit({ channel: LoginChannel.HttpBasic, source: '10.9.9.9', identity: 'gw-2' })).toBe(0);
  });

  it('counts every failure and every throttled attempt by channel and reason', async () => {
    const attempt = { channel: LoginChannel.Mqtt, source: '10.0.0.3', identity: 'gw-3' };
    for (let i = 0; i < LOGIN_THROTTLE.identity.burst; i++) {
      throttle.admit(attempt);
      throttle.fail(attempt, LoginFailure.Decommissioned);
    }
    throttle.admit(attempt);
    throttle.admit(attempt);
    const values = await failures();
    expect(values).toEqual(
      expect.arrayContaining([
        { labels: { channel: 'mqtt', reason: 'decommissioned' }, value: LOGIN_THROTTLE.identity.burst },
        { labels: { channel: 'mqtt', reason: 'throttled' }, value: 2 },
      ]),
    );
  });

  it('keeps its memory bounded: full buckets go first, then the oldest', () => {
    for (let i = 0; i < LOGIN_THROTTLE.maxBuckets + 10; i++) {
      const attempt = { channel: LoginChannel.RestBearer, source: `s${i}` };
      throttle.admit(attempt);
      throttle.fail(attempt, LoginFailure.UnknownToken);
    }
    const buckets = (throttle as unknown as { buckets: Map<string, unknown> }).buckets;
    expect(buckets.size).toBeLessThanOrEqual(LOGIN_THROTTLE.maxBuckets);
    expect(buckets.has(`s:s${LOGIN_THROTTLE.maxBuckets + 9}`)).toBe(true);
    expect(buckets.has('s:s0')).toBe(false);
  });
});
