import type { KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createPrivateKeyFile } from '@shelfsight/common';
import { keyIdOf, publicKeyBase64, signKeyList, type SignedKeyList } from '@shelfsight/contracts';

/**
 * A rollout trust chain for a real hub, as an admin sets it up with `shelf keys`: an offline
 * root (`root/root-key.pem`), the hub's release key (`release.pem`), a second release key that
 * will leak (`leaked.pem`), and a root-signed list naming both (`key-list-v1.json`). `hubEnv`
 * starts a hub on them; devices are provisioned with `trustedKeysFile` (the root only).
 */
export interface ReleaseKeysFixture {
  root: KeyObject;
  release: KeyObject;
  leaked: KeyObject;
  /** ROLLOUT_RELEASE_KEY_FILE and ROLLOUT_KEY_LIST_FILE of the hub. */
  hubEnv: Record<string, string>;
  /** The agent's --trusted-keys file (the root public key line). */
  trustedKeysFile: string;
  /** Sign a newer list with the root (what `shelf keys list sign` writes). */
  signList(version: number, keys: KeyObject[]): SignedKeyList;
}

export function releaseKeysFixture(dir: string): ReleaseKeysFixture {
  const root = createPrivateKeyFile(path.join(dir, 'root', 'root-key.pem'));
  const release = createPrivateKeyFile(path.join(dir, 'release.pem'));
  const leaked = createPrivateKeyFile(path.join(dir, 'leaked.pem'));
  const signList = (version: number, keys: KeyObject[]) =>
    signKeyList({ version, issuedAt: new Date(Date.now() - 60_000).toISOString(), expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString(), keys: keys.map((publicKey) => ({ publicKey })) }, root);
  const listFile = path.join(dir, 'key-list-v1.json');
  writeFileSync(listFile, JSON.stringify(signList(1, [release, leaked])));
  const trustedKeysFile = path.join(dir, 'root', 'root.pub');
  writeFileSync(trustedKeysFile, `${keyIdOf(root)} ${publicKeyBase64(root)}\n`);
  return { root, release, leaked, hubEnv: { ROLLOUT_RELEASE_KEY_FILE: path.join(dir, 'release.pem'), ROLLOUT_KEY_LIST_FILE: listFile }, trustedKeysFile, signList };
}
