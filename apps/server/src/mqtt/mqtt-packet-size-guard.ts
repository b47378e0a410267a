/**
 * Watches the MQTT fixed headers on a connection's byte stream and reports a packet whose declared
 * Remaining Length exceeds the limit, before the parser buffers it: mqtt-packet would otherwise accept up
 * to 256 MB per packet (MQTT-2.2.3 allows a 4-byte length) and hold it in memory.
 */
export class MqttPacketSizeGuard {
  private state: 'type' | 'length' | 'body' = 'type';
  private remaining = 0;
  private lengthValue = 0;
  private lengthMultiplier = 1;

  constructor(private readonly maxRemainingLength: number) {}

  /** Feeds the next bytes of the stream; returns false once a packet too large has been announced. */
  inspect(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const skip = Math.min(this.remaining, chunk.length - i);
        this.remaining -= skip;
        i += skip;
        if (this.remaining === 0) this.state = 'type';
      } else if (this.state === 'type') {
        this.state = 'length';
        this.lengthValue = 0;
        this.lengthMultiplier = 1;
        i++;
      } else {
        // MQTT-2.2.3: variable byte integer, 7 bits per byte, continuation in the high bit
        const byte = chunk[i++];
        this.lengthValue += (byte & 0x7f) * this.lengthMultiplier;
        this.lengthMultiplier *= 128;
        if (this.lengthValue > this.maxRemainingLength) return false;
        if ((byte & 0x80) === 0) {
          this.remaining = this.lengthValue;
          this.state = this.remaining > 0 ? 'body' : 'type';
        }
      }
    }
    return true;
  }
}

export interface ReadableConnection {
  read(size?: number): Buffer | null;
  destroy(error?: Error): void;
}

/**
 * Puts a size guard in front of aedes, which consumes a connection with `read()` on 'readable'. Wrapping the
 * instance's read keeps the socket itself (no extra stream hop on the hot path).
 */
export function guardPacketSize(
  connection: ReadableConnection,
  maxRemainingLength: number,
  onTooLarge: () => void,
): void {
  const guard = new MqttPacketSizeGuard(maxRemainingLength);
  const read = connection.read.bind(connection);
  let tripped = false;
  connection.read = (size?: number) => {
    if (tripped) return null;
    const chunk = read(size);
    if (chunk && !guard.inspect(chunk)) {
      tripped = true;
      onTooLarge();
      connection.destroy(new Error(`MQTT packet larger than ${maxRemainingLength} bytes`));
      return null;
    }
    return chunk;
  };
}
