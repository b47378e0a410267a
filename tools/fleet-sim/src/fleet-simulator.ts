import { randomBytes } from 'node:crypto';
import { JobEventMessage, JobEventType } from '@cowroot/protocol';
import { SimOutcome } from './sim-outcome';
import { SimulatedDevice, SimulatedDeviceOptions } from './simulated-device';

export interface FleetOptions {
  /** REST base URL of the fleet server, for provisioning */
  httpUrl: string;
  /** an operator or admin token */
  token: string;
  mqttUrl: string;
  count: number;
  idPrefix?: string;
  tags?: string[];
  /** outcome for device i; default: everyone confirms */
  outcomeOf?: (index: number) => SimOutcome;
  /** at most this many MQTT connects in flight */
  connectConcurrency?: number;
  device?: Partial<Pick<SimulatedDeviceOptions, 'rebootMs' | 'linkBytesPerSecond' | 'realDownload'>>;
}

/** Runs many SimulatedDevices in one process against a real server. A test and load tool. */
export class FleetSimulator {
  readonly devices: SimulatedDevice[] = [];
  readonly events: Array<{ deviceId: string; event: JobEventMessage }> = [];
  private readonly counts = new Map<JobEventType, number>();

  constructor(private readonly options: FleetOptions) {}

  /** Provisions the devices through the REST bulk endpoint with pre-authorised credentials. */
  async provision(): Promise<void> {
    const prefix = this.options.idPrefix ?? 'sim';
    const rows = Array.from({ length: this.options.count }, (_, i) => ({
      id: `${prefix}-${String(i).padStart(5, '0')}`,
      tags: this.options.tags ?? [],
      credential: randomBytes(24).toString('base64url'),
    }));
    const batch = 1000;
    for (let i = 0; i < rows.length; i += batch) {
      const slice = rows.slice(i, i + batch);
      const response = await fetch(`${this.options.httpUrl}/api/v1/devices/bulk`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${this.options.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ devices: slice }),
      });
      if (!response.ok) throw new Error(`bulk provisioning failed: HTTP ${response.status} ${await response.text()}`);
    }
    rows.forEach((row, index) => {
      this.devices.push(
        new SimulatedDevice(
          {
            id: row.id,
            credential: row.credential,
            mqttUrl: this.options.mqttUrl,
            outcome: this.options.outcomeOf?.(index) ?? SimOutcome.Confirm,
            ...this.options.device,
          },
          { onEvent: (deviceId, event) => this.record(deviceId, event) },
        ),
      );
    });
  }

  async connectAll(): Promise<void> {
    await this.forAll((device) => device.connect());
  }

  async stopAll(): Promise<void> {
    await this.forAll((device) => device.stop());
  }

  /** Runs `fn` for every device, at most `concurrency` at a time (default: the connect concurrency). */
  async forAll(
    fn: (device: SimulatedDevice) => Promise<void>,
    concurrency = this.options.connectConcurrency ?? 200,
  ): Promise<void> {
    let next = 0;
    const workers = Array.from({ length: Math.min(concurrency, this.devices.length) }, async () => {
      while (next < this.devices.length) await fn(this.devices[next++]);
    });
    await Promise.all(workers);
  }

  count(type: JobEventType): number {
    return this.counts.get(type) ?? 0;
  }

  device(id: string): SimulatedDevice {
    const device = this.devices.find((d) => d.id === id);
    if (!device) throw new Error(`no simulated device ${id}`);
    return device;
  }

  private record(deviceId: string, event: JobEventMessage): void {
    this.events.push({ deviceId, event });
    this.counts.set(event.type, (this.counts.get(event.type) ?? 0) + 1);
  }
}
