import { HttpException, HttpStatus } from '@nestjs/common';

/** A label or correction named a category that is unknown or retired. */
export class InactiveCategoryError extends HttpException {
  constructor(name: string, retired: boolean) {
    super(
      { statusCode: 400, message: [`category: ${name} is ${retired ? 'retired' : 'not a known category'}; labels must name an active category (GET /categories, POST /categories)`] },
      HttpStatus.BAD_REQUEST,
    );
  }
}

export class CategoryNotFoundError extends HttpException {
  constructor(name: string) {
    super({ statusCode: 404, message: `category ${name} not found` }, HttpStatus.NOT_FOUND);
  }
}
