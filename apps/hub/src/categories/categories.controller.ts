import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CategorySchema } from '@shelfsight/contracts';
import { RequireRole } from '../auth/roles';
import { ZodBody, ZodParam } from '../common/zod-openapi';
import { CategoriesService } from './categories.service';
import { CategoryDto, CategoryListDto, NewCategorySchema, type NewCategory } from './category.dto';

@ApiTags('categories')
@RequireRole('operator')
@Controller('categories')
export class CategoriesController {
  constructor(private readonly categories: CategoriesService) {}

  @ApiOperation({ summary: 'List categories' })
  @Get()
  @ApiOkResponse({ type: CategoryListDto })
  list(): Promise<CategoryListDto> {
    return this.categories.list();
  }

  @ApiOperation({ summary: 'Add a category' })
  @Post()
  @ApiOkResponse({ type: CategoryDto, description: 'the category, added (or brought back from retirement)' })
  add(@ZodBody(NewCategorySchema) body: NewCategory): Promise<CategoryDto> {
    return this.categories.add(body);
  }

  @ApiOperation({ summary: 'Retire a category' })
  @Post(':name/retire')
  @HttpCode(200)
  @ApiOkResponse({ type: CategoryDto })
  retire(@ZodParam('name', CategorySchema) name: string): Promise<CategoryDto> {
    return this.categories.retire(name);
  }
}
