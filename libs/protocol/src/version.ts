// the root package.json is not a project, so the boundary rule cannot tell it from another project's files;
// it is the release's one version source, read for this field only (bundles inline just the string)
// eslint-disable-next-line @nx/enforce-module-boundaries
import { version } from '../../../package.json';

/** Version of the MQTT protocol between server and agent (docs/protocol.md §1). Bumped on breaking change. */
export const PROTOCOL_VERSION = 1;

/** Largest MQTT payload either side accepts (docs/protocol.md §2). Inventories of a few hundred snapshots fit. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * The cowroot release (the agent's reported agentVersion and --version, the CLI's --version). The root
 * package.json is its one source; bundles inline just this field.
 */
export const COWROOT_VERSION: string = version;
