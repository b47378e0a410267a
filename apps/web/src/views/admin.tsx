import { FormEvent, useState } from 'react';
import type { Schemas } from '@cowroot/api-client';
import { api, unwrap } from '../api';
import { ConfirmDialog, ConfirmRequest, ErrorNote } from '../components';
import { useResource } from '../hooks';
import { shortTime } from '../logic/format';

type Role = Schemas['CreateTokenDto']['role'];

function Tokens({ ask }: { ask(request: ConfirmRequest): void }) {
  const tokens = useResource(() => unwrap(api.GET('/api/v1/tokens')), []);
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [created, setCreated] = useState<Schemas['CreatedTokenDto'] | null>(null);
  const [error, setError] = useState<Error | undefined>();
  const create = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      setCreated(await unwrap(api.POST('/api/v1/tokens', { body: { name: name.trim(), role } })));
      setName('');
      tokens.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <section aria-labelledby="tokens-h">
      <h2 id="tokens-h">API tokens</h2>
      <form className="row" onSubmit={create}>
        <input
          aria-label="token name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="name"
          required
        />
        <select aria-label="token role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          <option>viewer</option>
          <option>operator</option>
          <option>admin</option>
        </select>
        <button type="submit" className="primary">
          Create token
        </button>
      </form>
      <ErrorNote error={error ?? tokens.error} />
      {created && (
        <div className="note" role="status">
          <p>
            The secret of <strong>{created.name}</strong> is shown this once; copy it now:
          </p>
          <code className="secret" data-testid="new-secret">
            {created.token}
          </code>
          <button type="button" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Created</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {tokens.data?.map((token) => (
              <tr key={token.id} className={token.revokedAt ? 'muted' : ''}>
                <td>{token.name}</td>
                <td>{token.role}</td>
                <td>{shortTime(token.createdAt)}</td>
                <td>{shortTime(token.lastUsedAt)}</td>
                <td>
                  {token.revokedAt ? (
                    `revoked ${shortTime(token.revokedAt)}`
                  ) : (
                    <button
                      type="button"
                      className="danger"
                      onClick={() =>
                        ask({
                          title: `Revoke token ${token.name}?`,
                          body: <p>Its sessions end at once.</p>,
                          danger: true,
                          confirmLabel: 'Revoke',
                          run: async () => {
                            await unwrap(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id: token.id } } }));
                            tokens.reload();
                          },
                        })
                      }
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function SigningKeys({ ask }: { ask(request: ConfirmRequest): void }) {
  const keys = useResource(() => unwrap(api.GET('/api/v1/signing-keys')), []);
  const [name, setName] = useState('');
  const [pem, setPem] = useState('');
  const [error, setError] = useState<Error | undefined>();
  const add = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      await unwrap(api.POST('/api/v1/signing-keys', { body: { name: name.trim(), publicKeyPem: pem.trim() + '\n' } }));
      setName('');
      setPem('');
      keys.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">Signing keys</h2>
      <form onSubmit={add} className="stack">
        <input
          aria-label="key name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="name"
          required
        />
        <textarea
          aria-label="ed25519 public key (PEM)"
          value={pem}
          onChange={(e) => setPem(e.target.value)}
          rows={3}
          placeholder="-----BEGIN PUBLIC KEY-----"
          required
        />
        <button type="submit" className="primary">
          Register key
        </button>
      </form>
      <ErrorNote error={error ?? keys.error} />
      <div className="scroll">
        <table>
          <tbody>
            {keys.data?.map((key) => (
              <tr key={key.id} className={key.revokedAt ? 'muted' : ''}>
                <td>{key.name}</td>
                <td className="mono">{key.fingerprint.slice(0, 16)}…</td>
                <td>{shortTime(key.createdAt)}</td>
                <td>
                  {key.revokedAt ? (
                    `revoked ${shortTime(key.revokedAt)}`
                  ) : (
                    <button
                      type="button"
                      className="danger"
                      onClick={() =>
                        ask({
                          title: `Revoke signing key ${key.name}?`,
                          body: <p>Uploads signed with it are refused from now on.</p>,
                          danger: true,
                          confirmLabel: 'Revoke',
                          run: async () => {
                            await unwrap(api.DELETE('/api/v1/signing-keys/{id}', { params: { path: { id: key.id } } }));
                            keys.reload();
                          },
                        })
                      }
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function AdminView() {
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  return (
    <section>
      <h1>Admin</h1>
      <Tokens ask={setConfirm} />
      <SigningKeys ask={setConfirm} />
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
