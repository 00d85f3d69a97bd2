import { createPrivateKey, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigError } from '@shelfsight/common';
import { keyIdOf, publicKeyBase64, signManifest, type SignedManifest, type UnsignedManifest } from '@shelfsight/contracts';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { SigningKeyInUseError } from './rollouts.error';
import { RolloutsRepository } from './rollouts.repository';

/** An Ed25519 private key from ROLLOUT_SIGNING_KEY: PKCS8 PEM, or base64 of the PKCS8 DER. */
export function parseSigningKey(text: string): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  try {
    key = t.startsWith('-----BEGIN')
      ? createPrivateKey(t)
      : createPrivateKey({ key: Buffer.from(t.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  ROLLOUT_SIGNING_KEY: not a PKCS8 private key (PEM or base64 DER): ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`invalid configuration:\n  ROLLOUT_SIGNING_KEY: expected an Ed25519 key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  return key;
}

/**
 * The key rollout manifests are signed with, and the list of keys devices should trust.
 * ROLLOUT_SIGNING_KEY when set (its public half is listed in the database); otherwise a key
 * generated at first start and kept in the database, so replicas sign alike. Keys stay
 * trusted until retired, so a rotation (a new ROLLOUT_SIGNING_KEY) does not orphan devices
 * holding manifests of the old one.
 */
@Injectable()
export class SigningKeys implements OnModuleInit {
  private readonly log = new Logger('RolloutSigning');
  private key?: KeyObject;

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly repo: RolloutsRepository,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.rolloutSigningKey) {
      const key = parseSigningKey(this.config.rolloutSigningKey);
      await this.repo.upsertKey({ keyId: keyIdOf(key), publicKey: publicKeyBase64(key), privateKey: null, source: 'setting' });
      this.key = key;
      this.log.log(`rollout manifests are signed with ROLLOUT_SIGNING_KEY (key id ${keyIdOf(key)})`);
      return;
    }
    const row = await this.repo.generatedKey(() => {
      const { privateKey } = generateKeyPairSync('ed25519');
      return { keyId: keyIdOf(privateKey), publicKey: publicKeyBase64(privateKey), privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64') };
    });
    this.key = createPrivateKey({ key: Buffer.from(row.private_key!, 'base64'), format: 'der', type: 'pkcs8' });
    this.log.log(`rollout manifests are signed with the hub's generated key ${row.key_id} (kept in the database; set ROLLOUT_SIGNING_KEY to bring your own)`);
  }

  get keyId(): string {
    return keyIdOf(this.signingKey());
  }

  /**
   * A 32-byte secret for `purpose` derived (HKDF-SHA256) from the signing key, so every
   * replica holding the key derives the same one and nothing else has to be stored.
   */
  derivedSecret(purpose: string): Buffer {
    const der = this.signingKey().export({ type: 'pkcs8', format: 'der' });
    return Buffer.from(hkdfSync('sha256', der, Buffer.alloc(0), `shelfsight/${purpose}`, 32));
  }

  sign(fields: UnsignedManifest): SignedManifest {
    return signManifest(fields, this.signingKey());
  }

  /** The trusted-keys file devices are given (`--trusted-keys`): `<keyid> <base64 SPKI DER>` a line. */
  async trustedKeysFile(): Promise<string> {
    const rows = await this.repo.trustedKeys();
    const lines = rows.map((r) => `${r.key_id} ${r.public_key}`);
    return [`# ShelfSight rollout signing keys (${rows.length}); agent option --trusted-keys`, ...lines, ''].join('\n');
  }

  /** Stop trusting a key (devices provisioned afterwards no longer get it); the key in use cannot be retired. */
  async retire(keyId: string): Promise<boolean> {
    if (keyId === this.keyId) throw new SigningKeyInUseError(keyId);
    return this.repo.retireKey(keyId);
  }

  private signingKey(): KeyObject {
    if (!this.key) throw new Error('rollout signing key not loaded yet');
    return this.key;
  }
}
