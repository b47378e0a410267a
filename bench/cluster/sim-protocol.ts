/** The IPC messages between bench:cluster and its simulator processes (sim-worker.ts). */
export interface DeviceSpec {
  index: number;
  id: string;
  credential: string;
  /** a fixed MQTT password (raw NATS: a device JWT issued by the bench; embedded: the credential) */
  password?: string;
}

export type WorkerRequest = { id: number } & (
  | { op: 'add'; devices: DeviceSpec[]; mqttUrls: string[]; tokenUrls?: string[] }
  | { op: 'connect'; concurrency: number }
  | { op: 'publish'; reports: number }
  | { op: 'accepted' }
  | { op: 'stop' }
);

export interface WorkerReply {
  id: number;
  error?: string;
  devices?: number;
  seconds?: number;
  /** sum over the worker's connected devices of their last state seq */
  seqSum?: number;
  accepted?: number;
  /** reports still not acknowledged at the publish deadline, after every reconnect and resend */
  failed?: number;
  /** reports sent again (no PUBACK before their connection closed, or within the PUBACK timeout) */
  resent?: number;
  /** connects after a failed attempt or a connection NATS closed */
  reconnects?: number;
}
