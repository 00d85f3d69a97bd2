import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigError, loadOrCreatePrivateKeyFile, parsePrivateKey, readPrivateKeyFile } from '@shelfsight/common';
import {
  keyIdOf,
  signKeyList,
  signManifest,
  signModelCommand,
  verifyKeyList,
  type ModelCommand,
  type ReleaseKeyList,
  type SignedKeyList,
  type SignedManifest,
  type UnsignedManifest,
  type UnsignedModelCommand,
  parsePublicKey,
  publicKeyBase64,
} from '@shelfsight/contracts';
import { DEVICE_LINK, type DeviceLink } from '../broker/device-link';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { KeyListRefusedError } from './rollouts.error';
import { ReleaseKeysRepository } from './release-keys.repository';

/** Where the hub keeps the keys it generates for a demo (`npm start`): DATA_DIR/rollout-keys, mode 0700. */
export const GENERATED_KEYS_DIR = 'rollout-keys';
export const GENERATED_RELEASE_KEY = 'release-key.pem';
export const DEMO_ROOT_KEY = 'demo-root-key.pem';
/** A demo key list is valid this long, and signed again at start once it has less than a tenth of it left. */
const DEMO_LIST_TTL_MS = 365 * 86_400_000;

/** An Ed25519 private key from ROLLOUT_SIGNING_KEY: PKCS8 PEM, or base64 of the PKCS8 DER. */
export function parseSigningKey(text: string): KeyObject {
  return parsePrivateKey(text, 'ROLLOUT_SIGNING_KEY');
}

/**
 * The release key rollout manifests and model commands are signed with, and the root-signed
 * list of release keys devices trust (TUF-style: the root is offline, devices pin only its
 * public key). The release key comes from ROLLOUT_SIGNING_KEY or ROLLOUT_RELEASE_KEY_FILE, or
 * is generated in DATA_DIR (mode 0600) for a demo; it is never written to the database. The
 * list comes from ROLLOUT_KEY_LIST_FILE, or is signed by a demo root generated beside the
 * demo key; newer lists from the same root can be published at run time
 * (POST /rollouts/key-list). The current list is kept in the database (public, signed
 * material), served at GET /rollouts/key-list and retained on MQTT for devices.
 */
@Injectable()
export class SigningKeys implements OnModuleInit {
  private readonly log = new Logger('RolloutSigning');
  private key?: KeyObject;
  private root?: { keyId: string; key: KeyObject };
  private current?: SignedKeyList;

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly repo: ReleaseKeysRepository,
    @Inject(DEVICE_LINK) private readonly link: Pick<DeviceLink, 'sendReleaseKeys'>,
  ) {}

  async onModuleInit(): Promise<void> {
    this.key = this.loadReleaseKey();
    const fromFile = this.config.rolloutKeyListFile ? this.readListFile(this.config.rolloutKeyListFile) : undefined;
    if (fromFile) {
      this.root = { keyId: fromFile.list.root.keyId, key: parsePublicKey(fromFile.list.root.publicKey) };
      const held = await this.repo.currentList(this.root.keyId);
      if (!held || held.list.version < fromFile.list.version) await this.repo.saveList(fromFile);
    }
    const fallback = fromFile ?? (await this.demoList());
    this.current = await this.verifiedCurrent(fallback);
    this.checkCurrent();
    void this.publish();
  }

  get keyId(): string {
    return keyIdOf(this.signingKey());
  }

  sign(fields: UnsignedManifest): SignedManifest {
    return signManifest(fields, this.signingKey());
  }

  signCommand(fields: UnsignedModelCommand): ModelCommand {
    return signModelCommand(fields, this.signingKey());
  }

  /** The next release counter of a backbone's model line. */
  nextReleaseCounter(backboneId: string, modelLine: string): Promise<number> {
    return this.repo.nextReleaseCounter(backboneId, modelLine);
  }

  /** The current root-signed release key list. */
  keyList(): SignedKeyList {
    if (!this.current) throw new Error('release key list not loaded yet');
    return this.current;
  }

  /**
   * The file devices are provisioned with (`shelf agent --trusted-keys`): the root public
   * key, `<keyid> <base64 SPKI DER>`. Devices learn the release keys from the lists it signs.
   */
  trustedKeysFile(): string {
    const root = this.root!;
    return [`# ShelfSight rollout root key (devices trust the release keys its signed lists name); agent option --trusted-keys`, `${root.keyId} ${publicKeyBase64(root.key)}`, ''].join('\n');
  }

  /**
   * Publish a newer list signed by the hub's root (a revocation or rotation): verified, stored
   * and sent to devices. Refused when it is not signed by the root, expired, or not newer.
   */
  async publishList(raw: unknown): Promise<{ list: ReleaseKeyList; signsWithListedKey: boolean }> {
    const root = this.root!;
    const v = verifyKeyList(raw, new Map([[root.keyId, root.key]]), new Date());
    if (!v.ok) throw new KeyListRefusedError(v.message);
    const held = this.keyList();
    if (v.list.version <= held.list.version) throw new KeyListRefusedError(`key list v${v.list.version} is not newer than the current v${held.list.version}`);
    await this.repo.saveList(v.signed);
    this.current = await this.verifiedCurrent(v.signed);
    this.log.warn(`release key list v${v.list.version} published (keys: ${v.list.keys.map((k) => k.keyId.slice(0, 12)).join(', ') || 'none'})`);
    const signsWithListedKey = this.checkCurrent();
    await this.publish();
    return { list: v.list, signsWithListedKey };
  }

  /**
   * The newest list of the hub's root in the database, verified against the root (the root
   * comes from the list file or DATA_DIR, never the database: a row someone wrote there
   * without the root's signature is refused and said so); `fallback` when there is none.
   */
  private async verifiedCurrent(fallback?: SignedKeyList): Promise<SignedKeyList> {
    const root = this.root!;
    const stored = await this.repo.currentList(root.keyId);
    const v = stored ? verifyKeyList(stored, new Map([[root.keyId, root.key]])) : undefined;
    if (v?.ok) return v.signed;
    if (stored) this.log.error(`the newest release key list in the database (v${String(stored.list?.version)}) is not signed by root ${root.keyId}; ignored`);
    if (!fallback) throw new Error('no release key list signed by the hub’s root');
    return fallback;
  }

  private loadReleaseKey(): KeyObject {
    if (this.config.rolloutSigningKey) {
      const key = parseSigningKey(this.config.rolloutSigningKey);
      this.log.log(`rollout manifests are signed with the release key from ROLLOUT_SIGNING_KEY (key id ${keyIdOf(key)})`);
      return key;
    }
    if (this.config.rolloutReleaseKeyFile) {
      const key = readPrivateKeyFile(this.config.rolloutReleaseKeyFile, 'ROLLOUT_RELEASE_KEY_FILE');
      this.log.log(`rollout manifests are signed with the release key in ${this.config.rolloutReleaseKeyFile} (key id ${keyIdOf(key)})`);
      return key;
    }
    const file = path.join(this.config.dataDir, GENERATED_KEYS_DIR, GENERATED_RELEASE_KEY);
    const { key, created } = loadOrCreatePrivateKeyFile(file, 'generated release key');
    this.log.warn(
      `rollout manifests are signed with ${created ? 'a release key generated now' : 'the generated release key'} in ${file} (mode 0600, key id ${keyIdOf(key)}; never in the database). ` +
        'Set ROLLOUT_SIGNING_KEY or ROLLOUT_RELEASE_KEY_FILE to bring your own',
    );
    return key;
  }

  private readListFile(file: string): SignedKeyList {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  ROLLOUT_KEY_LIST_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
    const embedded = (raw as { list?: { root?: { keyId?: unknown; publicKey?: unknown } } })?.list?.root;
    let roots = new Map<string, KeyObject>();
    try {
      if (typeof embedded?.publicKey === 'string') roots = new Map([[String(embedded.keyId), parsePublicKey(embedded.publicKey)]]);
    } catch {
      // verifyKeyList names what is wrong.
    }
    const v = verifyKeyList(raw, roots);
    if (!v.ok) throw new ConfigError(`invalid configuration:\n  ROLLOUT_KEY_LIST_FILE: ${file}: ${v.message}`);
    this.log.log(`release key list v${v.list.version} from ${file}, signed by root ${v.list.root.keyId}, expires ${v.list.expiresAt}`);
    return v.signed;
  }

  /** The demo root (DATA_DIR, mode 0600) signs a list of the hub's release key whenever the held one lacks it or is about to expire. */
  private async demoList(): Promise<SignedKeyList | undefined> {
    const file = path.join(this.config.dataDir, GENERATED_KEYS_DIR, DEMO_ROOT_KEY);
    const { key: rootKey, created } = loadOrCreatePrivateKeyFile(file, 'demo root key');
    this.root = { keyId: keyIdOf(rootKey), key: rootKey };
    const stored = await this.repo.currentList(this.root.keyId);
    const held = stored && verifyKeyList(stored, new Map([[this.root.keyId, rootKey]])).ok ? stored : undefined;
    const now = Date.now();
    let made: SignedKeyList | undefined;
    const fresh = held && held.list.keys.some((k) => k.keyId === this.keyId) && Date.parse(held.list.expiresAt) - now > DEMO_LIST_TTL_MS / 10;
    if (!fresh) {
      const signed = signKeyList(
        { version: (held?.list.version ?? 0) + 1, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + DEMO_LIST_TTL_MS).toISOString(), keys: [{ publicKey: this.signingKey(), name: 'hub (generated)' }] },
        rootKey,
      );
      await this.repo.saveList(signed);
      made = signed;
    }
    this.log.warn(
      `release key list signed by ${created ? 'a demo root key generated now' : 'the demo root key'} in ${file} (mode 0600, root key id ${this.root.keyId}). ` +
        'Whoever reads DATA_DIR can sign for devices that trust this root: for production create an offline root (`shelf keys root init`) and set ROLLOUT_KEY_LIST_FILE',
    );
    return made ?? held;
  }

  /** Whether the current list names the key the hub signs with (else devices refuse what it signs: said loudly). */
  private checkCurrent(): boolean {
    const { list } = this.keyList();
    if (Date.parse(list.expiresAt) <= Date.now()) this.log.error(`release key list v${list.version} expired at ${list.expiresAt}: devices refuse every offer until a newer list is published`);
    const listed = list.keys.some((k) => k.keyId === this.keyId);
    if (!listed) this.log.error(`the release key ${this.keyId} is not in key list v${list.version}: devices will refuse what this hub signs`);
    return listed;
  }

  private async publish(): Promise<void> {
    try {
      await this.link.sendReleaseKeys(this.keyList());
    } catch (err) {
      this.log.warn(`release key list not published on MQTT: ${(err as Error).message}`);
    }
  }

  private signingKey(): KeyObject {
    if (!this.key) throw new Error('rollout signing key not loaded yet');
    return this.key;
  }
}
