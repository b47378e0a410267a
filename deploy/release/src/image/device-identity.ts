import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isDeviceId } from '@cowroot/protocol';
import { ReleaseError, ReleaseErrorCode } from '../release-error';

/**
 * A factory credential as the server's bulk provisioning accepts it (apps/server/src/devices/device-rules.ts
 * GIVEN_CREDENTIAL_PATTERN: the server stores it as a fast hash, safe only for high-entropy secrets).
 * Checked here so a line never flashes devices the server will refuse.
 */
export const FACTORY_CREDENTIAL_PATTERN = /^[\x21-\x7e]{24,256}$/;

/** The agent's mqttUrl rule (apps/agent/src/config/agent-config.ts ServerConfigSection). */
export const MQTT_URL_PATTERN = /^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/;

export interface DeviceIdentity {
  deviceId: string;
  credential: string;
}

async function readInput(path: string, what: string): Promise<string> {
  try {
    return await readFile(resolve(path), 'utf8');
  } catch (error) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `${what} ${resolve(path)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}

/** --device-id and --credential-file, checked against the server's bulk provisioning rules. */
export async function loadDeviceIdentity(deviceId: string, credentialFile: string): Promise<DeviceIdentity> {
  if (!isDeviceId(deviceId)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `--device-id ${JSON.stringify(deviceId)} is not a device id (letters, digits, . _ -, at most 64, no ..)`,
    );
  }
  const credential = (await readInput(credentialFile, 'credential file')).trim();
  if (!FACTORY_CREDENTIAL_PATTERN.test(credential)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `credential file ${resolve(credentialFile)} must hold 24-256 printable ASCII characters without spaces, as the server's bulk provisioning takes them (e.g. openssl rand -hex 24)`,
    );
  }
  return { deviceId, credential };
}

/** The agent's httpUrl rule: the artifact origin it pins downloads to (docs/agent.md §2). */
export function checkHttpUrl(url: string): string {
  if (!/^https?:\/\/[^\s/?#@]+(\/\S*)?$/.test(url) || !URL.canParse(url)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `--http-url ${JSON.stringify(url)} must be http://host[:port] or https://host[:port]`,
    );
  }
  return url;
}

export function checkMqttUrl(url: string): string {
  if (!MQTT_URL_PATTERN.test(url)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `--mqtt-url ${JSON.stringify(url)} must be mqtt://host[:port] or mqtts://host[:port]`,
    );
  }
  return url;
}

/** The CA bundle for mqtts:// and https:// artifact URLs: at least one PEM certificate. */
export async function loadCaBundle(path: string): Promise<string> {
  const text = await readInput(path, 'CA file');
  try {
    new X509Certificate(text);
  } catch {
    throw new ReleaseError(ReleaseErrorCode.InvalidArgument, `CA file ${resolve(path)} is not a PEM certificate`);
  }
  return text;
}
