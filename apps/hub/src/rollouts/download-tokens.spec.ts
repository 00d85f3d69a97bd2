import { generateKeyPairSync } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { HubConfig } from '../config/hub-config';
import { DownloadTokens } from './download-tokens';
import type { RolloutsRepository } from './rollouts.repository';
import { SigningKeys } from './signing-keys';

/** The key table is the boundary: a setting key only needs `upsertKey`. */
const keyTable = { upsertKey: async () => undefined } as unknown as RolloutsRepository;

const pemKey = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

const tokensFor = async (pem: string) => {
  const keys = new SigningKeys({ rolloutSigningKey: pem } as HubConfig, keyTable);
  await keys.onModuleInit();
  return new DownloadTokens(keys);
};

describe(DownloadTokens.name, () => {
  const now = new Date('2026-12-02T00:00:00.000Z');
  const inAnHour = new Date(now.getTime() + 3600_000);
  let pem: string;
  let sut: DownloadTokens;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    pem = pemKey();
    sut = await tokensFor(pem);
  });

  it('accepts a token for its device and version until it expires, and names the device', () => {
    const token = sut.issue('dev-1.a_b', 'v7', inAnHour);
    expect(token).toMatch(/^[A-Za-z0-9._~-]+$/);
    expect(sut.check(token, 'v7', now)).toEqual({ ok: true, deviceId: 'dev-1.a_b' });
    expect(sut.check(token, 'v7', new Date(inAnHour.getTime() - 1000))).toEqual({ ok: true, deviceId: 'dev-1.a_b' });
  });

  it('refuses it for another version, once expired, and when its device part names another device', () => {
    const token = sut.issue('dev-1', 'v7', inAnHour);
    expect(sut.check(token, 'v8', now)).toEqual({ ok: false, reason: 'bad_token' });
    expect(sut.check(token, 'v7', inAnHour)).toEqual({ ok: false, reason: 'expired_token' });
    // Another device presenting dev-1's token under its own name.
    expect(sut.check(token.replace(/^sdt_dev-1\./, 'sdt_dev-2.'), 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    // A token issued to dev-2 grants dev-2, never dev-1.
    expect(sut.check(sut.issue('dev-2', 'v7', inAnHour), 'v7', now)).toEqual({ ok: true, deviceId: 'dev-2' });
  });

  it('refuses forged tokens: a moved expiry, a changed mac, garbage, and a token of another hub key', async () => {
    const token = sut.issue('dev-1', 'v7', inAnHour);
    expect(token.startsWith('sdt_dev-1.')).toBe(true);
    const [device, exp, mac] = token.split('.') as [string, string, string];
    expect(sut.check(`${device}.${Number(exp) + 3600}.${mac}`, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    const flipped = `${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    expect(sut.check(`${device}.${exp}.${flipped}`, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    for (const junk of ['', 'x', 'sdt_dev-1.123', `sdt_dev-1.${exp}.short`, `sdt_../etc.${exp}.${mac}`, token.slice('sdt_'.length), `shk_${token}`]) expect(sut.check(junk, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    const otherHub = await tokensFor(pemKey());
    expect(otherHub.check(token, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    // The same signing key (another replica) accepts it.
    expect((await tokensFor(pem)).check(token, 'v7', now)).toEqual({ ok: true, deviceId: 'dev-1' });
  });
});
