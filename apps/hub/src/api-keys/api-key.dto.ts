import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import { ROLES, type Role } from '../auth/roles';

export const CreateApiKeySchema = z
  .object({
    name: z.string().trim().min(1).max(100).regex(/^[\w .@:/-]+$/, 'letters, digits, spaces and . _ @ : / - only'),
    role: z.enum(ROLES),
    /** When the key stops working (ISO date-time); omitted = never (or the creating key's own expiry). */
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();
export type CreateApiKey = z.infer<typeof CreateApiKeySchema>;

export const KeyIdSchema = z.string().regex(/^([0-9a-f]{16}|bootstrap)$/, 'a key id is 16 hex digits');

export class ApiKeyDto {
  @ApiProperty({ description: 'key id: the public part of the key, as in logs and the audit log' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ROLES }) role!: Role;
  @ApiProperty({ description: 'who created it (key:<id>)' }) createdBy!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) expiresAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) revokedAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'to the minute' }) lastUsedAt!: string | null;
}

export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiProperty({ description: 'the key, shk_<id>_<secret>: shown only in this response, never stored or shown again' }) key!: string;
}
