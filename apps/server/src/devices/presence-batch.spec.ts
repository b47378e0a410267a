import { DeviceStatus } from './device.entity';
import { PresenceRow, PresenceWrite, planPresence } from './presence-batch';

const ME = 'broker-me';
const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const row = (id: string, extra: Partial<PresenceRow> = {}): PresenceRow => ({
  id,
  status: DeviceStatus.Active,
  online: false,
  session_broker: null,
  last_connected_at: null,
  ...extra,
});
const set = (deviceId: string, online: boolean, at: Date, extra: Partial<PresenceWrite> = {}): PresenceWrite =>
  ({ kind: 'set', deviceId, online, reason: 'r', at, connected: false, connectedAt: null, ...extra }) as PresenceWrite;

describe(planPresence.name, () => {
  it('applies one device’s writes in order: a quick disconnect/reconnect ends online, each transition audited', () => {
    const plan = planPresence(
      [row('a')],
      [set('a', true, t(1), { connected: true }), set('a', false, t(2)), set('a', true, t(3), { connected: true })],
      ME,
    );
    expect(plan.updates).toEqual([
      {
        id: 'a',
        online: true,
        session_broker: ME,
        last_connected_at: t(3).toISOString(),
        seen_at: t(3).toISOString(),
      },
    ]);
    expect(plan.audits.map((a) => a.action)).toEqual([
      'device.state.online',
      'device.state.offline',
      'device.state.online',
    ]);
  });

  it('audits no repeated state, and leaves last_connected_at alone without a connect', () => {
    const plan = planPresence([row('a', { online: true, session_broker: ME })], [set('a', true, t(5))], ME);
    expect(plan.audits).toEqual([]);
    expect(plan.updates[0]).toMatchObject({ online: true, last_connected_at: null, seen_at: t(5).toISOString() });
  });

  it('skips unknown and decommissioned devices, an offline from another instance, and a stale disconnect', () => {
    const plan = planPresence(
      [
        row('gone', { status: DeviceStatus.Decommissioned }),
        row('moved', { online: true, session_broker: 'other' }),
        row('newer', { online: true, session_broker: ME, last_connected_at: t(10) }),
      ],
      [
        set('unknown', true, t(1)),
        set('gone', true, t(1)),
        set('moved', false, t(1)),
        set('newer', false, t(11), { connectedAt: t(9) }),
      ],
      ME,
    );
    expect(plan).toEqual({ updates: [], audits: [] });
  });

  it('audits a takeover in its place among the transitions', () => {
    const plan = planPresence(
      [row('a')],
      [{ kind: 'takeover', deviceId: 'a', at: t(1) }, set('a', true, t(1), { connected: true })],
      ME,
    );
    expect(plan.audits.map((a) => a.action)).toEqual(['device.session.takeover', 'device.state.online']);
  });

  it('throws RangeError on an invalid date, so the batch isolates that write', () => {
    expect(() => planPresence([row('a')], [set('a', true, new Date(NaN))], ME)).toThrow(RangeError);
  });
});
