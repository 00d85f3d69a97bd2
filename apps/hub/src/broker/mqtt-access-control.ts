import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { AedesOptions, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { DEVICE_ID_PATTERN, DEVICE_PUBLISH_CHANNELS, DEVICE_SUBSCRIBE_CHANNELS, parseDeviceTopic, TOPIC_ROOT } from '@shelfsight/contracts';
import { RateLimitedLog } from '../common/rate-limited-log';
import { sha256 } from '../common/sha256';

/** A device's stored credential, as the broker needs it. */
export interface StoredCredential {
  passwordHash: string;
  disabled: boolean;
}

/** Where the broker looks credentials up (the database, once the hub's modules are up). */
export interface DeviceCredentialStore {
  find(deviceId: string): Promise<StoredCredential | undefined>;
  verify(password: string, passwordHash: string): Promise<boolean>;
}

export type AuthAction = 'connect' | 'publish' | 'subscribe';
export type RefusalListener = (action: AuthAction, reason: string) => void;

type Identity = { kind: 'hub' } | { kind: 'device'; deviceId: string };

/** Hub → every device broadcasts (e.g. the hub's status) live under this prefix: any device may subscribe, none may publish. */
const HUB_BROADCAST_PREFIX = `${TOPIC_ROOT}/hub/`;

/** CONNACK return codes of MQTT 3.1.1 (aedes maps them to MQTT 5 reason codes). */
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** How long a verified password is trusted without running scrypt again (a reconnect storm costs one hash per device). */
const VERIFIED_TTL_MS = 5 * 60_000;
/** How long a refused password is refused without running scrypt again (a misconfigured fleet retrying). */
const REFUSED_TTL_MS = 10_000;

interface CachedVerdict {
  digest: Buffer;
  until: number;
}

/**
 * Authentication and authorization of the embedded aedes broker (MQTT_AUTH=on):
 * - a device connects with username = client id = its device id and the password it was
 *   provisioned with; the password is checked against the stored scrypt hash, and the
 *   verdict is cached briefly (by a SHA-256 digest compared in constant time);
 * - a device publishes only to `shelfsight/v1/devices/<its id>/<device→hub channel>` and
 *   subscribes only to its own hub→device channels and to the hub's broadcasts
 *   (`shelfsight/v1/hub/...`, exact topics); a foreign publish is answered with an
 *   error, which makes aedes disconnect that client (and only that client);
 * - the hub's own client authenticates with a random secret generated at hub start and
 *   may do everything.
 * Every refusal is counted (through the listener) and logged, rate-limited.
 */
export class MqttAccessControl {
  /** Username of the hub's own client; not a valid device id, so no device can claim it. */
  static readonly HUB_USERNAME = '$hub';
  /** Client ids of hub processes start with this; no device may use it (it would take over the hub's session). */
  static readonly HUB_CLIENT_ID_PREFIX = 'shelfsight-hub-';
  /** Password of the hub's own client, generated per hub process. */
  readonly hubSecret = randomBytes(32).toString('base64url');

  private readonly log: RateLimitedLog;
  private readonly hubSecretDigest = sha256(this.hubSecret);
  private readonly identities = new WeakMap<Client, Identity>();
  private readonly deviceClients = new Map<string, Client>();
  private readonly verified = new Map<string, CachedVerdict>();
  private readonly refused = new Map<string, CachedVerdict>();
  private store?: DeviceCredentialStore;
  private listener?: RefusalListener;
  private readonly early: Array<[AuthAction, string]> = [];

  constructor(private readonly now: () => number = Date.now) {
    const logger = new Logger('MqttAuth');
    this.log = new RateLimitedLog((line) => logger.warn(line), 1000, now);
  }

  /** Connect the credential store and the refusal counter (devices are refused as "server unavailable" until then). */
  attach(store: DeviceCredentialStore, listener: RefusalListener): void {
    this.store = store;
    this.listener = listener;
    for (const [action, reason] of this.early.splice(0)) listener(action, reason);
  }

  /** Forget cached verdicts of a device and disconnect it (its credential was rotated or disabled). */
  revoke(deviceId: string): void {
    this.verified.delete(deviceId);
    this.refused.delete(deviceId);
    const client = this.deviceClients.get(deviceId);
    this.deviceClients.delete(deviceId);
    if (client && !client.closed) client.close();
  }

  /** The aedes hooks. */
  hooks(): Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'> {
    return {
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          (refusal) => {
            if (!refusal) return done(null, true);
            const err = new Error(refusal.message) as AuthenticateError;
            err.returnCode = refusal.code as AuthenticateError['returnCode'];
            done(err, false);
          },
          (e: unknown) => {
            this.refuse('connect', 'error', client?.id, (e as Error).message);
            const err = new Error('server unavailable') as AuthenticateError;
            err.returnCode = SERVER_UNAVAILABLE as AuthenticateError['returnCode'];
            done(err, false);
          },
        );
      },
      authorizePublish: (client, packet, done) => {
        const reason = this.publishRefusal(client, packet);
        if (!reason) return done(null);
        this.refuse('publish', reason, client?.id, `topic ${packet.topic}`);
        done(new Error(`publish to ${packet.topic} not authorized (${reason})`));
      },
      authorizeSubscribe: (client, sub, done) => {
        const reason = this.subscribeRefusal(client, sub);
        if (!reason) return done(null, sub);
        this.refuse('subscribe', reason, client?.id, `filter ${sub.topic}`);
        done(null, null); // SUBACK 0x80 for this filter; the client stays connected
      },
    };
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<{ code: number; message: string } | undefined> {
    const clientId = client.id;
    if (username === MqttAccessControl.HUB_USERNAME) {
      if (password && timingSafeEqual(sha256(password), this.hubSecretDigest)) {
        this.identities.set(client, { kind: 'hub' });
        return undefined;
      }
      return this.refuseConnect('bad_password', clientId, 'wrong hub secret', BAD_USERNAME_OR_PASSWORD);
    }
    if (!username || !password || password.length === 0) {
      return this.refuseConnect('missing_credentials', clientId, 'no username or password', BAD_USERNAME_OR_PASSWORD);
    }
    if (username !== clientId) {
      return this.refuseConnect('client_id_mismatch', clientId, `username ${username} is not the client id`, NOT_AUTHORIZED);
    }
    if (username.startsWith(MqttAccessControl.HUB_CLIENT_ID_PREFIX)) {
      return this.refuseConnect('reserved_id', clientId, 'client ids of this form belong to hub processes', NOT_AUTHORIZED);
    }
    if (!DEVICE_ID_PATTERN.test(username)) {
      return this.refuseConnect('unknown_device', clientId, 'not a valid device id', BAD_USERNAME_OR_PASSWORD);
    }
    const store = this.store;
    if (!store) return this.refuseConnect('not_ready', clientId, 'hub still starting', SERVER_UNAVAILABLE);

    const deviceId = username;
    const digest = sha256(password);
    const now = this.now();
    if (matches(this.verified.get(deviceId), digest, now)) return this.admit(client, deviceId);
    if (matches(this.refused.get(deviceId), digest, now)) {
      return this.refuseConnect('bad_password', clientId, 'wrong password (recently refused)', BAD_USERNAME_OR_PASSWORD);
    }
    const credential = await store.find(deviceId);
    if (!credential) return this.refuseConnect('unknown_device', clientId, 'no credential provisioned', BAD_USERNAME_OR_PASSWORD);
    if (credential.disabled) return this.refuseConnect('disabled', clientId, 'credential disabled', NOT_AUTHORIZED);
    if (!(await store.verify(password.toString('utf8'), credential.passwordHash))) {
      this.refused.set(deviceId, { digest, until: this.now() + REFUSED_TTL_MS });
      return this.refuseConnect('bad_password', clientId, 'wrong password', BAD_USERNAME_OR_PASSWORD);
    }
    this.verified.set(deviceId, { digest, until: this.now() + VERIFIED_TTL_MS });
    this.refused.delete(deviceId);
    return this.admit(client, deviceId);
  }

  private admit(client: Client, deviceId: string): undefined {
    this.identities.set(client, { kind: 'device', deviceId });
    this.deviceClients.set(deviceId, client);
    return undefined;
  }

  private refuseConnect(reason: string, clientId: string | undefined, detail: string, code: number): { code: number; message: string } {
    this.refuse('connect', reason, clientId, detail);
    return { code, message: `connection refused (${reason})` };
  }

  private publishRefusal(client: Client | null, packet: PublishPacket): string | undefined {
    const identity = client ? this.identities.get(client) : undefined;
    if (!identity) return 'unauthenticated';
    if (identity.kind === 'hub') return undefined;
    const topic = parseDeviceTopic(packet.topic);
    if (!topic) return 'topic';
    if (topic.deviceId !== identity.deviceId) return 'foreign_device';
    if (!DEVICE_PUBLISH_CHANNELS.includes(topic.channel)) return 'channel';
    return undefined;
  }

  private subscribeRefusal(client: Client, sub: Subscription): string | undefined {
    const identity = this.identities.get(client);
    if (!identity) return 'unauthenticated';
    if (identity.kind === 'hub') return undefined;
    if (sub.topic.startsWith(HUB_BROADCAST_PREFIX) && !/[+#]/.test(sub.topic)) return undefined;
    const topic = parseDeviceTopic(sub.topic); // wildcards never parse: a device subscribes to exact topics
    if (!topic) return 'topic';
    if (topic.deviceId !== identity.deviceId) return 'foreign_device';
    if (!DEVICE_SUBSCRIBE_CHANNELS.includes(topic.channel)) return 'channel';
    return undefined;
  }

  private refuse(action: AuthAction, reason: string, clientId: string | undefined, detail: string): void {
    if (this.listener) this.listener(action, reason);
    else if (this.early.length < 10_000) this.early.push([action, reason]);
    this.log.warn(`${action} by client ${JSON.stringify(clientId ?? null)} refused (${reason}): ${detail}`);
  }
}

function matches(cached: CachedVerdict | undefined, digest: Buffer, now: number): boolean {
  return cached !== undefined && cached.until > now && timingSafeEqual(cached.digest, digest);
}

/** Injection token of the embedded broker's access control; null when MQTT_AUTH=off or the broker is external. */
export const MQTT_ACCESS_CONTROL = Symbol('MQTT_ACCESS_CONTROL');
