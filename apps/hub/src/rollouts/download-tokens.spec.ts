import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { DOWNLOAD_TOKEN_SECRET_FILE, DownloadTokens } from './download-tokens';

const newSecret = () => randomBytes(24).toString('base64');
const tokensFor = async (secret: string) => new DownloadTokens({ rolloutDownloadTokenSecret: secret, dataDir: '/nonexistent' });

describe(DownloadTokens.name, () => {
  const now = new Date('2026-12-02T00:00:00.000Z');
  const inAnHour = new Date(now.getTime() + 3600_000);
  let secret: string;
  let sut: DownloadTokens;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    secret = newSecret();
    sut = await tokensFor(secret);
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

  it('refuses forged tokens: a moved expiry, a changed mac, garbage, and a token of another hub secret', async () => {
    const token = sut.issue('dev-1', 'v7', inAnHour);
    expect(token.startsWith('sdt_dev-1.')).toBe(true);
    const [device, exp, mac] = token.split('.') as [string, string, string];
    expect(sut.check(`${device}.${Number(exp) + 3600}.${mac}`, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    const flipped = `${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    expect(sut.check(`${device}.${exp}.${flipped}`, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    for (const junk of ['', 'x', 'sdt_dev-1.123', `sdt_dev-1.${exp}.short`, `sdt_../etc.${exp}.${mac}`, token.slice('sdt_'.length), `shk_${token}`]) expect(sut.check(junk, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    const otherHub = await tokensFor(newSecret());
    expect(otherHub.check(token, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
    // The same secret (another replica) accepts it.
    expect((await tokensFor(secret)).check(token, 'v7', now)).toEqual({ ok: true, deviceId: 'dev-1' });
  });

  it('without a setting, generates its own secret in DATA_DIR (mode 0600) and keeps it across restarts', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tokens-'));
    const first = new DownloadTokens({ dataDir });
    const token = first.issue('dev-1', 'v7', inAnHour);
    expect(statSync(join(dataDir, DOWNLOAD_TOKEN_SECRET_FILE)).mode & 0o777).toBe(0o600);
    expect(new DownloadTokens({ dataDir }).check(token, 'v7', now)).toEqual({ ok: true, deviceId: 'dev-1' });
    expect(new DownloadTokens({ dataDir: mkdtempSync(join(tmpdir(), 'tokens-')) }).check(token, 'v7', now)).toEqual({ ok: false, reason: 'bad_token' });
  });
});
