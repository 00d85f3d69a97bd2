import { isIP } from 'node:net';

/** Express's named address ranges for `trust proxy`. */
const NAMED = ['loopback', 'linklocal', 'uniquelocal'];

/**
 * TRUST_PROXY as Express's `trust proxy` value: `off` (default: req.ip is the TCP peer),
 * a hop count (trust that many proxies in front: req.ip is the address they forwarded),
 * or a comma-separated list of proxy addresses, CIDR ranges and the names loopback,
 * linklocal, uniquelocal (trust X-Forwarded-For only from those). `true` (trust every
 * hop) is refused: any client could then choose its own address — and with it whose
 * rate limit and auth-failure lockout it counts against. Throws with the reason.
 */
export function trustProxyValue(setting: string | undefined): false | number | string[] {
  const s = (setting ?? '').trim();
  if (s === '' || s === 'off' || s === 'false' || s === '0') return false;
  if (/^\d+$/.test(s)) {
    const hops = Number(s);
    if (hops > 10) throw new Error('a hop count of at most 10');
    return hops;
  }
  if (s === 'true' || s === 'on' || s === '*') throw new Error('trusting every proxy lets any client pick its own address: give a hop count, or the proxies\u2019 addresses or ranges');
  const entries = s.split(',').map((e) => e.trim()).filter((e) => e.length > 0);
  for (const e of entries) {
    if (NAMED.includes(e)) continue;
    const [address, bits, extra] = e.split('/');
    const family = isIP(address ?? '');
    const maxBits = family === 4 ? 32 : 128;
    const bitsOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (family === 0 || !bitsOk || extra !== undefined) throw new Error(`"${e}" is not an address, CIDR range or one of ${NAMED.join(', ')}`);
  }
  return entries;
}
