import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import { SiteSchema } from '@shelfsight/contracts';

export const InventoryQuerySchema = z.object({
  site: SiteSchema.optional(),
});
export type InventoryQuery = z.infer<typeof InventoryQuerySchema>;

export class CategoryCountDto {
  @ApiProperty() category!: string;
  @ApiProperty({ description: 'locations whose latest confident detection is this category' }) locations!: number;
  @ApiProperty({ type: String, format: 'date-time', description: 'capture time of the newest observation behind this count' })
  newestObservation!: string;
}

export class InventoryDto {
  @ApiProperty({ nullable: true, type: String }) site!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) generatedAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'newest capture time over all counts' })
  newestObservation!: string | null;
  @ApiProperty() totalLocations!: number;
  @ApiProperty({ type: [CategoryCountDto] }) categories!: CategoryCountDto[];
}
