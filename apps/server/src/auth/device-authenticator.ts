/** Provided by the devices module; the auth guard uses it for routes marked @AllowDevices. */
export const DEVICE_AUTHENTICATOR = Symbol('DEVICE_AUTHENTICATOR');

/** What a credential check found; only `ok` lets the device in, the rest look the same to the client. */
export type CredentialCheck = 'ok' | 'unknown' | 'wrong' | 'decommissioned';

export interface DeviceAuthenticator {
  check(deviceId: string, secret: string): Promise<CredentialCheck>;
}
