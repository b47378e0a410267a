import { readFile } from 'node:fs/promises';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { ReleaseRefArg } from '../release-ref';

/**
 * The releases of `name` the fleet holds, from the JSON `cowroot releases bases <name> --json` prints
 * (GET /api/v1/releases/{name}/bases, docs/release-tool.md "Deltas for what the fleet holds"):
 * `{ "name": "base", "bases": [{ "version": "1.0.0", "devices": 12 }, …] }`, most-held first.
 */
export async function readFleetBases(file: string, name: string): Promise<ReleaseRefArg[]> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `--delta-from-fleet ${file}: ${(error as Error).message}; write it with: cowroot releases bases ${name} --json > ${file}`,
    );
  }
  const list = data as { name?: unknown; bases?: unknown };
  if (typeof list !== 'object' || list === null || !Array.isArray(list.bases)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `--delta-from-fleet ${file} is not the output of cowroot releases bases ${name} --json (no "bases" list)`,
    );
  }
  if (list.name !== name) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `--delta-from-fleet ${file} lists the bases of ${JSON.stringify(list.name)}, not of ${name}`,
    );
  }
  return list.bases.map((base: { version?: unknown }) => {
    if (typeof base?.version !== 'string') {
      throw new ReleaseError(ReleaseErrorCode.InvalidArgument, `--delta-from-fleet ${file}: a base without a version`);
    }
    return new ReleaseRefArg(name, base.version);
  });
}
