import { chmodSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKeyFile, loadOrCreatePrivateKeyFile, loadOrCreateSecretFile, readPrivateKeyFile } from './key-files';

const pem = (k: { export(o: { type: 'pkcs8'; format: 'pem' }): string | Buffer }) => k.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('key files', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'key-files-'))));

  it('creates a key with mode 0600 in a 0700 folder, never over an existing one, and leaves no temporary file', () => {
    const file = join(dir, 'keys', 'root-key.pem');
    const key = createPrivateKeyFile(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    expect(() => createPrivateKeyFile(file)).toThrow(/EEXIST/);
    expect(readdirSync(join(dir, 'keys'))).toEqual(['root-key.pem']);
    expect(pem(readPrivateKeyFile(file, 'root'))).toBe(pem(key));
  });

  it('loads the key it created the first time, and says which', () => {
    const file = join(dir, 'release.pem');
    const first = loadOrCreatePrivateKeyFile(file, 'release');
    const again = loadOrCreatePrivateKeyFile(file, 'release');
    expect([first.created, again.created]).toEqual([true, false]);
    expect(pem(again.key)).toBe(pem(first.key));
  });

  it('refuses a key file others may read', () => {
    const file = join(dir, 'loose.pem');
    createPrivateKeyFile(file);
    chmodSync(file, 0o644);
    expect(() => readPrivateKeyFile(file, 'ROLLOUT_RELEASE_KEY_FILE')).toThrow(/readable by others \(mode 644\); chmod 600/);
  });

  it('keeps a 32-byte secret', () => {
    const file = join(dir, 'secret');
    const a = loadOrCreateSecretFile(file);
    const b = loadOrCreateSecretFile(file);
    expect(a.secret).toHaveLength(32);
    expect([a.created, b.created]).toEqual([true, false]);
    expect(b.secret.equals(a.secret)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
