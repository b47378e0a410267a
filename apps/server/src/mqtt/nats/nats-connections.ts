import { whileJetStreamForms } from './jetstream-forming';
import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import { ServerConfig, NatsConfig } from '../../config/server-config';

/**
 * The replica's two NATS connections (BROKER=nats): `app`, a user of the application account (reports
 * stream, commands, rejection notices), and `sys`, a system-account user (connect/disconnect events,
 * account JWT pushes for revocation). Both reconnect forever across the configured nodes: a lost node is
 * the cluster's business, not a reason for the replica to stop.
 */
@Injectable()
export class NatsConnections implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(NatsConnections.name);
  private appConnection: NatsConnection | null = null;
  private sysConnection: NatsConnection | null = null;
  private jsClient: JetStreamClient | null = null;
  private jsManager: JetStreamManager | null = null;
  readonly options: NatsConfig;

  constructor(config: ServerConfig) {
    if (!config.nats) throw new Error('NatsConnections needs BROKER=nats');
    this.options = config.nats;
  }

  get app(): NatsConnection {
    if (!this.appConnection) throw new Error('NATS is not connected');
    return this.appConnection;
  }

  get sys(): NatsConnection {
    if (!this.sysConnection) throw new Error('NATS system connection is not open');
    return this.sysConnection;
  }

  get js(): JetStreamClient {
    if (!this.jsClient) throw new Error('NATS is not connected');
    return this.jsClient;
  }

  get jsm(): JetStreamManager {
    if (!this.jsManager) throw new Error('NATS is not connected');
    return this.jsManager;
  }

  isConnected(): boolean {
    return this.appConnection !== null && !this.appConnection.isClosed();
  }

  async onModuleInit(): Promise<void> {
    this.appConnection = await this.open('app', this.options.credsFile);
    this.sysConnection = await this.open('sys', this.options.systemCredsFile);
    this.jsClient = this.appConnection.jetstream();
    const app = this.appConnection;
    // jetstreamManager() asks $JS.API.INFO, which a cluster still electing its meta leader answers with 503
    this.jsManager = await whileJetStreamForms(
      'JetStream',
      () => app.jetstreamManager(),
      (message) => this.logger.warn(message),
    );
  }

  async onModuleDestroy(): Promise<void> {
    const connections = [this.appConnection, this.sysConnection];
    this.appConnection = this.sysConnection = null;
    await Promise.all(connections.map((nc) => nc?.drain().catch(() => nc.close())));
  }

  private async open(name: string, credsFile: string): Promise<NatsConnection> {
    let creds: Buffer;
    try {
      creds = await readFile(credsFile);
    } catch (error) {
      throw new Error(`cannot read NATS credentials ${credsFile}: ${(error as Error).message}`);
    }
    // re-encoded through TextEncoder so the bytes are this realm's Uint8Array (nkeys.js checks instanceof)
    const bytes = new TextEncoder().encode(creds.toString('utf8'));
    const nc = await connect({
      servers: this.options.urls,
      name: `cowroot-server-${name}`,
      authenticator: credsAuthenticator(bytes),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: true,
      timeout: 10_000,
    });
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect' || status.type === 'reconnect')
          this.logger.warn(`NATS ${name} connection: ${status.type} ${String(status.data)}`);
      }
    })().catch(() => undefined);
    this.logger.log(`NATS ${name} connection open to ${nc.getServer()}`);
    return nc;
  }
}
