/** Provided by the MQTT module so /readyz can tell whether the broker is listening. */
export const BROKER_READINESS = Symbol('BROKER_READINESS');

export interface BrokerReadiness {
  isListening(): boolean;
}
