import type { DeviceSelector } from '../devices/device-selection';

// the selector's SQL is device selection and lives with the devices (devices/device-selection.ts)
export type { DeviceSelector } from '../devices/device-selection';

/** A selector must narrow something: an empty one would silently target the whole fleet. */
export function isEmptySelector(selector: DeviceSelector): boolean {
  return (
    !selector.all &&
    !selector.tags?.length &&
    !selector.deviceIds &&
    !selector.filter?.bootedRelease &&
    selector.filter?.online === undefined &&
    !selector.filter?.idPrefix
  );
}
