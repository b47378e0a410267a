import { JobEventType } from '@cowroot/protocol';
import { SimOutcome } from '../../tools/fleet-sim/src/sim-outcome';
import { SimulatedDevice } from '../../tools/fleet-sim/src/simulated-device';
import { brokerTokenFetcher } from '../../tools/nats/nats-deployment';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkerReply, WorkerRequest } from './sim-protocol';

const PUBACK_TIMEOUT_MS = 60_000;

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
      // connectRetrying: a fresh NATS cluster refuses the first connects while it places its MQTT streams
      await forEach(fresh, request.concurrency, (device) => device.connectRetrying());
      return { seconds: (Date.now() - started) / 1000, devices: fresh.length };
    }
    case 'publish': {
      const connected = devices.slice(0, connectedUpTo);
      const started = Date.now();
      // every device at once, one report in flight each: bench:rollout's burst shape
      let failed = 0;
      await forEach(connected, connected.length, async (device) => {
        for (let i = 0; i < request.reports; i++) {
          // a QoS 1 publish on a connection the broker closed never settles: count it and go on
          const acked = await Promise.race([
            device.publishState().then(() => true),
            sleep(PUBACK_TIMEOUT_MS).then(() => false),
          ]);
          if (!acked || !device.connected) {
            failed += request.reports - i;
            return;
          }
        }
      });
      return {
        seconds: (Date.now() - started) / 1000,
        devices: connected.length,
        failed,
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
