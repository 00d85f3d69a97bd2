import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import { PageQuery, QueryTime } from '../common/query-schemas';

export const AuditQuerySchema = z
  .object({
    actor: z.string().regex(/^[\w.:@-]{1,120}$/, 'an actor such as key:<key id> or device:<device id>').optional(),
    route: z.string().regex(/^\/[\w./:-]{0,200}$/, 'a route pattern or its beginning, e.g. /api-keys').optional(),
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).optional(),
    from: QueryTime.optional(),
    to: QueryTime.optional(),
    limit: PageQuery.limit.pipe(z.number().max(500)),
    cursor: PageQuery.cursor,
  })
  .strict();
export type AuditQuery = z.infer<typeof AuditQuerySchema>;

export class AuditEntryDto {
  @ApiProperty() id!: string;
  @ApiProperty({ type: String, format: 'date-time' }) at!: string;
  @ApiProperty({ description: 'key:<key id>, device:<device id>, anonymous' }) actor!: string;
  @ApiProperty({ nullable: true, type: String }) role!: string | null;
  @ApiProperty() method!: string;
  @ApiProperty({ description: 'route pattern, e.g. /api-keys/:id/revoke' }) route!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) params!: Record<string, string>;
  @ApiProperty({ description: 'HTTP status of the answer' }) status!: number;
  @ApiProperty({ nullable: true, type: String, description: 'X-Request-Id of the request, as in its log lines (of the first, for coalesced denials)' }) requestId!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'client address (denied requests)' }) address!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'why it was denied: missing, unknown, wrong, expired, revoked (401), role (403), rate, auth_failures (429); null when not denied' })
  reason!: string | null;
  @ApiProperty({ description: 'requests this entry stands for: denied requests of one address and reason within AUDIT_DENIED_INTERVAL_S share one entry' }) count!: number;
}

export class AuditPageDto {
  @ApiProperty({ type: [AuditEntryDto] }) items!: AuditEntryDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}
