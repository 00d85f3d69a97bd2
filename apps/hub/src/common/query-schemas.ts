import { z } from 'zod';
import { CategorySchema, LocationCodeSchema, SiteSchema } from '@shelfsight/contracts';

/** Query-string building blocks shared by the manager API's endpoints. */
export const QueryBool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
export const QueryTime = z.iso.datetime({ offset: true }).transform((v) => new Date(v));
export const ZoneSchema = z.string().regex(/^[A-Z0-9]{1,4}$/, 'zone is the aisle part of a location code, e.g. A').describe('aisle part of the location code, e.g. A');

export const ScopeQuery = {
  site: SiteSchema.optional(),
  zone: ZoneSchema.optional(),
  category: CategorySchema.optional(),
};

export const PageQuery = {
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('page size, 1-1000'),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,40}$/, 'cursor must be a value returned as nextCursor')
    .describe('nextCursor of the previous page')
    .optional(),
};

export { LocationCodeSchema };

/** Opaque cursors: base64url of the last row's id. */
export function encodeCursor(id: bigint): string {
  return Buffer.from(id.toString()).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): bigint | undefined {
  if (!cursor) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString();
  return /^\d+$/.test(text) ? BigInt(text) : undefined;
}
