/** Reported in every state message and presence: the cowroot release (one source: package.json). */
export { COWROOT_VERSION as AGENT_VERSION } from '@cowroot/protocol';
