import { ErrorCode } from './error-codes';

/**
 * Why the server did not apply a device's MQTT message (docs/protocol.md §7.1). One enum for the ingest
 * handlers, the `reason` label of `cowroot_mqtt_messages_rejected_total` and the `MessageRejected` notice;
 * a test holds the table in the docs to it. The message-level values are the ErrorCode values of the
 * same name.
 */
export enum RejectionReason {
  /** not JSON, not an object, nested deeper than MAX_JSON_DEPTH, or not the schema (types, bounds, NUL, unknown fields) */
  MalformedMessage = 'MALFORMED_MESSAGE',
  /** payload over MAX_MQTT_MESSAGE_BYTES */
  MessageTooLarge = 'MESSAGE_TOO_LARGE',
  UnsupportedProtocolVersion = 'UNSUPPORTED_PROTOCOL_VERSION',
  /** a state report not newer than the stored one (a redelivery or an overtaken report) */
  StaleState = 'STALE_STATE',
  /** a job event for a command the server never sent to this device */
  UnknownCommandId = 'UNKNOWN_COMMAND_ID',
  /** the device is not active (decommissioned while the message was in flight) */
  DeviceNotActive = 'DEVICE_NOT_ACTIVE',
  /** valid by the schema, but the database refused this message on its own (after isolating it) */
  Unstorable = 'UNSTORABLE',
  /** publish outside the device's own topics: the connection is closed (MQTT 3.1.1 cannot refuse a publish) */
  AclDenied = 'ACL_DENIED',
  /** a packet announcing more than 4 × MAX_MQTT_MESSAGE_BYTES: the connection is cut before it is buffered */
  PacketTooLarge = 'PACKET_TOO_LARGE',
}

/** The reasons after which the connection stays open and the device gets a `MessageRejected` notice. */
export const ACKNOWLEDGED_REJECTIONS: readonly RejectionReason[] = Object.values(RejectionReason).filter(
  (reason) => reason !== RejectionReason.AclDenied && reason !== RejectionReason.PacketTooLarge,
);

/** The rejection for a message the protocol parser refused (docs/protocol.md §2). */
export function rejectionForParseError(code: ErrorCode): RejectionReason {
  switch (code) {
    case ErrorCode.MessageTooLarge:
      return RejectionReason.MessageTooLarge;
    case ErrorCode.UnsupportedProtocolVersion:
      return RejectionReason.UnsupportedProtocolVersion;
    default:
      // MALFORMED_MESSAGE, and UNKNOWN_COMMAND (only commands have a type the parser dispatches on)
      return RejectionReason.MalformedMessage;
  }
}
