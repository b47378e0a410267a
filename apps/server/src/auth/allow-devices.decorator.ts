import { SetMetadata } from '@nestjs/common';

export const ALLOW_DEVICES_KEY = 'cowroot:allow-devices';

/** The route also accepts a device authenticated by HTTP Basic `deviceId:credential`. */
export const AllowDevices = () => SetMetadata(ALLOW_DEVICES_KEY, true);
