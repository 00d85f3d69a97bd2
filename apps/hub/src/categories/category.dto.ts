import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import { CategorySchema } from '@shelfsight/contracts';

export const NewCategorySchema = z.object({ name: CategorySchema, displayName: z.string().min(1).max(120).optional() });
export type NewCategory = z.infer<typeof NewCategorySchema>;

export class CategoryDto {
  @ApiProperty() name!: string;
  @ApiProperty({ nullable: true, type: String }) displayName!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'retired categories take no new labels' }) retiredAt!: string | null;
  @ApiProperty() active!: boolean;
}

export class CategoryListDto {
  @ApiProperty({ type: [CategoryDto] }) items!: CategoryDto[];
}
