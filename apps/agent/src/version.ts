/** Reported in every state message and presence; bumped with the agent's releases. */
export const AGENT_VERSION = '0.1.0';
