/** Provided by the devices module; the auth guard uses it for routes marked @AllowDevices. */
export const DEVICE_AUTHENTICATOR = Symbol('DEVICE_AUTHENTICATOR');

export interface DeviceAuthenticator {
  authenticate(deviceId: string, secret: string): Promise<boolean>;
}
