import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, errorText } from '../api/client';
import type { components } from '../api/openapi';
import { ConfirmButton } from '../components/ConfirmButton';
import { ShownOnce } from '../components/ShownOnce';
import { ago } from '../format';

type ApiKey = components['schemas']['ApiKeyDto'];
type Created = components['schemas']['CreatedApiKeyDto'];
type Role = ApiKey['role'];
const ROLES: Role[] = ['viewer', 'operator', 'admin'];

function keyState(k: ApiKey, now = Date.now()): 'revoked' | 'expired' | 'active' {
  if (k.revokedAt) return 'revoked';
  if (k.expiresAt && new Date(k.expiresAt).getTime() <= now) return 'expired';
  return 'active';
}

/** API keys: every key (never a secret), create one (its secret shown once), revoke. */
export function AdminKeys() {
  const [keys, setKeys] = useState<ApiKey[]>();
  const [error, setError] = useState<string>();
  const [created, setCreated] = useState<Created>();

  const load = useCallback(async () => {
    const { data, error: err, response } = await api.GET('/api-keys');
    if (data) {
      setKeys(data);
      setError(undefined);
    } else setError(errorText(err, response.status));
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const revoke = async (k: ApiKey) => {
    const { error: err, response } = await api.POST('/api-keys/{id}/revoke', { params: { path: { id: k.id } } });
    if (err) return errorText(err, response.status);
    await load();
  };

  return (
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">API keys</h2>
      <CreateKeyForm
        onCreated={(c) => {
          setCreated(c);
          void load();
        }}
      />
      {created && <ShownOnce label={`Key "${created.name}" (${created.role})`} value={created.key} testId="new-key" onDismiss={() => setCreated(undefined)} />}
      {error && <p className="error">{error}</p>}
      {keys && (
        <table data-testid="api-keys">
          <thead>
            <tr>
              <th>Id</th>
              <th>Name</th>
              <th>Role</th>
              <th>State</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => {
              const state = keyState(k);
              return (
                <tr key={k.id} data-key-id={k.id}>
                  <td>
                    <code>{k.id}</code>
                  </td>
                  <td>{k.name}</td>
                  <td>{k.role}</td>
                  <td>
                    <span className={`pill ${state === 'active' ? 'ok' : 'off'}`}>{state}</span>
                  </td>
                  <td title={k.createdAt}>
                    {ago(k.createdAt)} <span className="muted">by {k.createdBy}</span>
                  </td>
                  <td title={k.expiresAt ?? undefined}>{k.expiresAt ? new Date(k.expiresAt).toLocaleString() : 'never'}</td>
                  <td title={k.lastUsedAt ?? undefined}>{ago(k.lastUsedAt)}</td>
                  <td>
                    {state !== 'revoked' && (
                      <ConfirmButton label="Revoke" title={`Revoke key ${k.id}?`} danger onConfirm={() => revoke(k)}>
                        <p>
                          “{k.name}” ({k.role}) is refused from then on. This cannot be undone: hand out a new key instead.
                        </p>
                      </ConfirmButton>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (k: Created) => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [expires, setExpires] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const body = { name: name.trim(), role, ...(expires ? { expiresAt: new Date(expires).toISOString() } : {}) };
    const { data, error: err, response } = await api.POST('/api-keys', { body });
    setBusy(false);
    if (data) {
      setError(undefined);
      setName('');
      onCreated(data);
    } else setError(errorText(err, response.status));
  };

  return (
    <form className="filters" onSubmit={submit} aria-label="Create API key">
      <label>
        name
        <input name="key-name" value={name} required maxLength={100} placeholder="e.g. night-shift manager" onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        role
        <select name="key-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
      </label>
      <label>
        expires (optional)
        <input name="key-expires" type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} />
      </label>
      <button type="submit" disabled={busy || !name.trim()}>
        Create key
      </button>
      {error && <span className="error">{error}</span>}
    </form>
  );
}
