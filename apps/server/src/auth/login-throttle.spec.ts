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

  it('admits no more concurrent attempts than the burst, and successes cost nothing', () => {
    const attempt = { channel: LoginChannel.Mqtt, source: '10.0.0.9' };
    const admitted = Array.from({ length: 100 }, () => throttle.admit(attempt)).filter((wait) => wait === 0);
    expect(admitted).toHaveLength(LOGIN_THROTTLE.source.burst);
    for (let i = 0; i < LOGIN_THROTTLE.source.burst; i++) throttle.refund(attempt);
    for (let i = 0; i < 1000; i++) {
      expect(throttle.admit(attempt)).toBe(0);
      throttle.refund(attempt);
    }
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
      throttle.admit({ channel: LoginChannel.RestBearer, source: `s${i}` });
    }
    const buckets = (throttle as unknown as { buckets: Map<string, unknown> }).buckets;
    expect(buckets.size).toBeLessThanOrEqual(LOGIN_THROTTLE.maxBuckets);
    expect(buckets.has(`s:s${LOGIN_THROTTLE.maxBuckets + 9}`)).toBe(true);
    expect(buckets.has('s:s0')).toBe(false);
  });
});
