import { HttpException, HttpStatus } from '@nestjs/common';

export class DetectionNotFoundError extends HttpException {
  constructor(id: bigint) {
    super({ statusCode: 404, message: `detection ${id} not found` }, HttpStatus.NOT_FOUND);
  }
}
