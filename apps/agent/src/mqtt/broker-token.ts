import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';

/** Gives up on the token request after this long: the MQTT reconnect retries it. */
const TOKEN_TIMEOUT_MS = 15_000;

/**
 * `server.mqttAuth: "token"` (docs/agent.md, docs/scale-out.md): the MQTT password is a short-lived broker
 * JWT that the server issues against the device credential (POST /api/v1/devices/{id}/broker-token, HTTP
 * Basic). node:https rather than fetch, so `server.caFile` applies and Node 18 works.
 */
export function fetchBrokerToken(
  httpUrl: string,
  deviceId: string,
  credential: string,
  ca: Buffer | null,
): Promise<string> {
  const base = httpUrl.endsWith('/') ? httpUrl : `${httpUrl}/`;
  const url = new URL(`api/v1/devices/${encodeURIComponent(deviceId)}/broker-token`, base);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${deviceId}:${credential}`).toString('base64')}` },
        timeout: TOKEN_TIMEOUT_MS,
        ...(ca && url.protocol === 'https:' ? { ca } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let token: unknown;
          try {
            token = (JSON.parse(text) as { token?: unknown }).token;
          } catch {
            token = undefined;
          }
          if (response.statusCode === 200 && typeof token === 'string' && token.length > 0) return resolve(token);
          reject(new Error(`broker token refused: HTTP ${response.statusCode} ${text.slice(0, 200)}`));
        });
        response.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`broker token: no answer within ${TOKEN_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}
