import { DEVICE_ID_PATTERN } from '@shelfsight/contracts';

/** Every download token starts with this (API keys start `shk_`), so the access guard can tell them apart. */
export const DOWNLOAD_TOKEN_PREFIX = 'sdt_';

const TOKEN_PATTERN = /^sdt_(.+)\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** `sdt_<deviceId>.<expiry, unix s>.<mac, base64url>`. */
export function formatDownloadToken(deviceId: string, expiresAtS: number, mac: Buffer): string {
  return `${DOWNLOAD_TOKEN_PREFIX}${deviceId}.${expiresAtS}.${mac.toString('base64url')}`;
}

/** The parts of a well-formed token, or undefined. */
export function parseDownloadToken(token: string): { deviceId: string; expiresAtS: number; mac: Buffer } | undefined {
  const m = TOKEN_PATTERN.exec(token);
  if (!m || !DEVICE_ID_PATTERN.test(m[1]!)) return undefined;
  return { deviceId: m[1]!, expiresAtS: Number(m[2]), mac: Buffer.from(m[3]!, 'base64url') };
}

/** Whether an Authorization header presents a download token (`Bearer sdt_…`) rather than an API key. */
export function isDownloadTokenAuthorization(authorization: string | undefined): boolean {
  return /^Bearer\s+sdt_/i.test(authorization ?? '');
}
