/** Fields every agent log line may carry (CONVENTIONS.md §6). */
export interface LogFields {
  commandId?: string;
  [key: string]: unknown;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogSink = (line: string) => void;

/**
 * One JSON line per event on stdout (journald keeps it), always with the device id, so a fleet's logs can
 * be searched by device and command without parsing free text.
 */
export class AgentLogger {
  constructor(
    private readonly deviceId: string,
    private readonly sink: LogSink = (line) => process.stdout.write(`${line}\n`),
  ) {}

  log(level: LogLevel, message: string, fields: LogFields = {}): void {
    const line: Record<string, unknown> = {
      ts: new Date().toISOString(),
      level,
      deviceId: this.deviceId,
      msg: message,
    };
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      line[key] = value instanceof Error ? value.message : value;
    }
    this.sink(JSON.stringify(line));
  }

  info(message: string, fields?: LogFields): void {
    this.log('info', message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.log('warn', message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.log('error', message, fields);
  }

  debug(message: string, fields?: LogFields): void {
    this.log('debug', message, fields);
  }
}
