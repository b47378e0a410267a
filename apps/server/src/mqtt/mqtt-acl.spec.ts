import { decidePublish, maySubscribe } from './mqtt-acl';

describe('decidePublish', () => {
  it('lets a device publish state, events and presence under its own id', () => {
    for (const channel of ['state', 'events', 'presence']) {
      expect(decidePublish('dev-a', `cowroot/v1/devices/dev-a/${channel}`)).toMatchObject({
        allowed: true,
        topic: { deviceId: 'dev-a', channel },
      });
    }
  });

  it('refuses another device, the commands channel and anything outside the device tree', () => {
    for (const topic of [
      'cowroot/v1/devices/dev-b/state',
      'cowroot/v1/devices/dev-a/commands',
      'cowroot/v1/devices/dev-a/rejections',
      'cowroot/v1/devices/dev-a/state/extra',
      'cowroot/v1/devices/dev-a',
      '$SYS/broker/uptime',
      'elsewhere',
    ]) {
      expect(decidePublish('dev-a', topic).allowed).toBe(false);
    }
  });
});

describe('maySubscribe', () => {
  it('allows only the own commands and rejections topics', () => {
    expect(maySubscribe('dev-a', 'cowroot/v1/devices/dev-a/commands')).toBe(true);
    expect(maySubscribe('dev-a', 'cowroot/v1/devices/dev-a/rejections')).toBe(true);
    for (const filter of [
      'cowroot/v1/devices/dev-b/commands',
      'cowroot/v1/devices/dev-b/rejections',
      'cowroot/v1/devices/+/commands',
      'cowroot/v1/devices/dev-a/#',
      'cowroot/v1/devices/dev-a/state',
      '#',
      '$SYS/#',
    ]) {
      expect(maySubscribe('dev-a', filter)).toBe(false);
    }
  });
});
