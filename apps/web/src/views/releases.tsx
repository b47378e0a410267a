import { api, unwrap } from '../api';
import { ErrorNote, Loading } from '../components';
import { useLiveVersion, useResource } from '../hooks';
import { artifactDeltaFormat } from '../logic/delta-formats';
import { formatBytes, shortTime } from '../logic/format';

/** Releases with their artifacts (full, incremental and delta, with parents, delta formats, sizes and signing key). */
export function ReleasesView() {
  const version = useLiveVersion((change) => change.topic === 'release', 1000);
  const usageVersion = useLiveVersion((change) => change.topic === 'device', 5000);
  const releases = useResource(async () => {
    const page = await unwrap(api.GET('/api/v1/releases', { params: { query: { limit: 50 } } }));
    return Promise.all(
      page.items.map((release) =>
        unwrap(
          api.GET('/api/v1/releases/{name}/{version}', {
            params: { path: { name: release.name, version: release.version } },
          }),
        ),
      ),
    );
  }, [version]);
  const usage = useResource(() => unwrap(api.GET('/api/v1/fleet/releases')), [usageVersion]);
  const keys = useResource(() => unwrap(api.GET('/api/v1/signing-keys')), [version]);
  const keyName = new Map((keys.data ?? []).map((key) => [key.id, key.name]));
  const usageOf = new Map((usage.data ?? []).map((row) => [row.release, row]));
  return (
    <section>
      <h1>Releases</h1>
      <Loading when={releases.loading && !releases.data} />
      <ErrorNote error={releases.error ?? usage.error} />
      <ul className="cards">
        {releases.data?.map((release) => {
          const ref = `${release.name}@${release.version}`;
          const used = usageOf.get(ref);
          return (
            <li key={release.id} className="card">
              <div className="row spread">
                <strong>{ref}</strong>
                <span data-testid={`usage-${ref}`}>
                  {used?.running ?? 0} run it · {used?.holding ?? 0} hold it
                </span>
              </div>
              <p className="muted">
                {release.description || 'no description'} · {shortTime(release.createdAt)} by {release.createdByName}
              </p>
              <div className="scroll">
                <table>
                  <thead>
                    <tr>
                      <th>Artifact</th>
                      <th>Kind</th>
                      <th>Delta format</th>
                      <th>Parent</th>
                      <th>Size</th>
                      <th>Signed by</th>
                    </tr>
                  </thead>
                  <tbody>
                    {release.artifacts.map((artifact) => (
                      <tr key={artifact.file}>
                        <td>{artifact.file}</td>
                        <td>{artifact.kind}</td>
                        <td data-testid={`format-${artifact.file}`}>{artifactDeltaFormat(artifact)}</td>
                        <td>{artifact.parent ? `${artifact.parent.name}@${artifact.parent.version}` : '–'}</td>
                        <td>{formatBytes(artifact.size)}</td>
                        <td>{keyName.get(artifact.signingKeyId) ?? artifact.signingKeyId}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
