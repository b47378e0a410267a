import { JobEventType } from '@cowroot/protocol';
import { SimOutcome } from '../../tools/fleet-sim/src/sim-outcome';
import { SimulatedDevice } from '../../tools/fleet-sim/src/simulated-device';
import { brokerTokenFetcher } from '../../tools/nats/nats-deployment';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkerReply, WorkerRequest } from './sim-protocol';

/**
 * A report without PUBACK for this long is sent again on the same connection. Long: in a 10,000-device
 * burst a PUBACK legitimately takes seconds, and a resend too early doubles the burst.
 */
const PUBACK_TIMEOUT_MS = 30_000;
/** A burst's publish phase gives up on the reports still unacknowledged after this long (counted, not thrown). */
const PUBLISH_DEADLINE_MS = 10 * 60_000;

/**
 * One simulator process of bench:cluster (forked by SimPool): holds a slice of the fleet as the same
 * SimulatedDevices bench:rollout and the cluster-spec use, because one process may hold at most 20,000
 * open files here (`ulimit -n`) and 30,000 devices need 30,000 sockets. Driven over the IPC channel.
 */
const devices: SimulatedDevice[] = [];
let connectedUpTo = 0;
let accepted = 0;

/** Every device's install is answered with accepted + a failed download: the wave is cheap to repeat. */
const hooks = {
  onEvent: (_id: string, event: { type: JobEventType }) => {
    if (event.type === JobEventType.Accepted) accepted++;
  },
};

async function forEach(list: SimulatedDevice[], concurrency: number, fn: (d: SimulatedDevice) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, list.length) }, async () => {
      while (next < list.length) await fn(list[next++]);
    }),
  );
}

function totals(list: SimulatedDevice[]): { resent: number; reconnects: number } {
  return list.reduce(
    (sum, device) => ({ resent: sum.resent + device.resentReports, reconnects: sum.reconnects + device.reconnects }),
    { resent: 0, reconnects: 0 },
  );
}

async function handle(request: WorkerRequest): Promise<Omit<WorkerReply, 'id'>> {
  switch (request.op) {
    case 'add':
      for (const spec of request.devices) {
        // each device starts on its own node (index spread) and fails over to the others, like the agent
        const urls = request.mqttUrls;
        const first = spec.index % urls.length;
        const rotated = [...urls.slice(first), ...urls.slice(0, first)];
        const tokenUrl = request.tokenUrls?.[spec.index % request.tokenUrls.length];
        devices.push(
          new SimulatedDevice(
            {
              id: spec.id,
              credential: spec.credential,
              mqttUrl: rotated[0],
              failoverMqttUrls: rotated.slice(1),
              mqttPassword: tokenUrl
                ? brokerTokenFetcher(tokenUrl, spec.id, spec.credential)
                : spec.password
                  ? async () => spec.password!
                  : undefined,
              outcome: SimOutcome.DownloadFail,
              // a device NATS closes connects again (next node, backoff + jitter) and sends its
              // unacknowledged reports again, as the agent does; the bench then counts a report lost only
              // when it never reaches PostgreSQL
              reconnect: true,
              pubackTimeoutMs: PUBACK_TIMEOUT_MS,
            },
            hooks,
          ),
        );
      }
      return { devices: devices.length };
    case 'connect': {
      const fresh = devices.slice(connectedUpTo);
      connectedUpTo = devices.length;
      const started = Date.now();
      const before = totals(fresh);
      // connectRetrying: a fresh NATS cluster refuses the first connects while it places its MQTT streams
      await forEach(fresh, request.concurrency, (device) => device.connectRetrying());
      const after = totals(fresh);
      return {
        seconds: (Date.now() - started) / 1000,
        devices: fresh.length,
        reconnects: after.reconnects - before.reconnects,
      };
    }
    case 'publish': {
      const connected = devices.slice(0, connectedUpTo);
      const started = Date.now();
      const before = totals(connected);
      // every device at once, one report in flight each: bench:rollout's burst shape
      let failed = 0;
      const deadline = sleep(PUBLISH_DEADLINE_MS).then(() => false);
      await forEach(connected, connected.length, async (device) => {
        for (let i = 0; i < request.reports; i++) {
          // reconnect mode repeats a report until acknowledged, across connections: only a device that
          // could not get it acknowledged before the deadline gives up (its reports are counted as failed)
          const acked = await Promise.race([device.publishState().then(() => true), deadline]);
          if (!acked) {
            failed += request.reports - i;
            return;
          }
        }
      });
      const after = totals(connected);
      return {
        seconds: (Date.now() - started) / 1000,
        devices: connected.length,
        failed,
        resent: after.resent - before.resent,
        reconnects: after.reconnects - before.reconnects,
        seqSum: connected.reduce((sum, device) => sum + device.lastStateSeq, 0),
      };
    }
    case 'accepted':
      return { accepted };
    case 'stop':
      await forEach(devices.slice(0, connectedUpTo), 500, (device) => device.stop());
      devices.length = 0;
      connectedUpTo = 0;
      return { devices: 0 };
  }
}

process.on('message', (request: WorkerRequest) => {
  handle(request).then(
    (reply) => process.send!({ id: request.id, ...reply } satisfies WorkerReply),
    (error: Error) => process.send!({ id: request.id, error: error.stack ?? error.message } satisfies WorkerReply),
  );
});
process.on('disconnect', () => process.exit(0));
