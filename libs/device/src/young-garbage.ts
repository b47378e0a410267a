import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'minor' | 'major' }) => void;

let collect: Collect | null | undefined;

/**
 * A minor (young generation) garbage collection, run every few MiB by the agent's two byte movers: the
 * downloader (apps/agent/src/download) and the delta reconstructor (./delta). Node hands every socket or
 * pipe read to JavaScript in a fresh 64 KiB buffer; V8 collects them only after some 30 MiB have piled
 * up, and the malloc arena keeps that peak as RSS for good. Collecting them as they die keeps a 1 GiB
 * download, or the rebuild of a delta, within a few MiB on a device where the agent's whole budget is
 * 64 MiB. A scavenge of the small young generation (the unit's --max-semi-space-size=1) costs about
 * 0.1 ms. `--expose-gc` is set at run time so the bundle keeps running with plain `node`; where that is
 * not possible this does nothing.
 */
export function collectYoungGarbage(): void {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  collect?.({ type: 'minor' });
}
