import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from './config';

/**
 * Ed25519 private keys in files (the rollout root and release keys): PKCS8 PEM, created with
 * mode 0600 in a folder of mode 0700, never overwritten.
 */

/** An Ed25519 private key from PKCS8 PEM, or base64 of its PKCS8 DER; `what` names it in errors. */
export function parsePrivateKey(text: string, what: string): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  try {
    key = t.startsWith('-----BEGIN')
      ? createPrivateKey(t)
      : createPrivateKey({ key: Buffer.from(t.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  ${what}: not a PKCS8 private key (PEM or base64 DER): ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`invalid configuration:\n  ${what}: expected an Ed25519 key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  return key;
}

/** Read a private key file; refuses one that others than its owner may read (mode & 0o077). */
export function readPrivateKeyFile(file: string, what: string): KeyObject {
  let text: string;
  let mode: number;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  ${what}: cannot read ${file}: ${(err as Error).message}`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new ConfigError(`invalid configuration:\n  ${what}: ${file} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return parsePrivateKey(text, `${what} (${file})`);
}

/**
 * Write `data` to `file` (mode 0600) only if there is no such file, whole or not at all: a
 * temporary file hard-linked into place, so a replica starting at the same moment on a shared
 * DATA_DIR reads either nothing (EEXIST for the loser) or the complete file.
 */
function createExclusive(file: string, data: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, data, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temp, file);
  } finally {
    unlinkSync(temp);
  }
}

/** Create a new Ed25519 key pair in `file` (PKCS8 PEM, mode 0600); fails (EEXIST) if the file exists. */
export function createPrivateKeyFile(file: string): KeyObject {
  const { privateKey } = generateKeyPairSync('ed25519');
  createExclusive(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  return privateKey;
}

/** The key in `file`, created there first if there is none; `created` says which. */
export function loadOrCreatePrivateKeyFile(file: string, what: string): { key: KeyObject; created: boolean } {
  try {
    return { key: createPrivateKeyFile(file), created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { key: readPrivateKeyFile(file, what), created: false };
  }
}

/** A 32-byte secret (hex) kept in `file` (mode 0600), created there first if there is none. */
export function loadOrCreateSecretFile(file: string): { secret: Buffer; created: boolean } {
  const fresh = randomBytes(32);
  try {
    createExclusive(file, `${fresh.toString('hex')}\n`);
    return { secret: fresh, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new ConfigError(`invalid configuration:\n  ${file}: expected 64 hex digits (a 32-byte secret)`);
  return { secret: Buffer.from(text, 'hex'), created: false };
}
