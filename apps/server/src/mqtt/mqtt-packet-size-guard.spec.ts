import { MqttPacketSizeGuard } from './mqtt-packet-size-guard';

/** MQTT-2.2.3 variable byte integer */
function remainingLength(n: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return bytes;
}

/** A QoS 1 PUBLISH (MQTT-3.3) written by hand, so the test does not trust the code it checks. */
function publishBytes(payloadSize: number): Buffer {
  const topic = Buffer.from('cowroot/v1/devices/a/state');
  const variable = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from([0, 7])]);
  const body = Buffer.concat([variable, Buffer.alloc(payloadSize, 0x61)]);
  return Buffer.concat([Buffer.from([0x32, ...remainingLength(body.length)]), body]);
}

const PINGREQ = Buffer.from([0xc0, 0x00]);

describe(MqttPacketSizeGuard.name, () => {
  it('passes a stream of small packets, however the bytes are chunked', () => {
    const stream = Buffer.concat([publishBytes(10), publishBytes(200), publishBytes(1000), PINGREQ]);
    for (const chunkSize of [1, 3, 7, 64, stream.length]) {
      const guard = new MqttPacketSizeGuard(2000);
      for (let i = 0; i < stream.length; i += chunkSize) {
        expect(guard.inspect(stream.subarray(i, i + chunkSize))).toBe(true);
      }
    }
  });

  it('trips on the length bytes of a packet above the limit, before its body arrives', () => {
    const guard = new MqttPacketSizeGuard(2000);
    expect(guard.inspect(publishBytes(100))).toBe(true);
    const big = publishBytes(5000);
    expect(guard.inspect(big.subarray(0, 3))).toBe(false);
  });
});
