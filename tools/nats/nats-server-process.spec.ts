import { NATS_210_BINARY, NATS_SYSTEM_BINARY, natsServerBinary } from './nats-server-process';

describe('natsServerBinary', () => {
  it('takes NATS_SERVER_BINARY over everything', () => {
    expect(natsServerBinary({ NATS_SERVER_BINARY: '/x/nats-server' }, () => true)).toBe('/x/nats-server');
  });

  it('prefers the unpacked 2.10 when it is there', () => {
    expect(natsServerBinary({}, (p) => p === NATS_210_BINARY)).toBe(NATS_210_BINARY);
  });

  it("falls back to the system's 2.9 without it", () => {
    expect(natsServerBinary({}, () => false)).toBe(NATS_SYSTEM_BINARY);
  });
});
