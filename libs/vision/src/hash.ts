import { createHash } from 'node:crypto';

export function sha256Hex(...parts: Array<Buffer | Uint8Array | string>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}
