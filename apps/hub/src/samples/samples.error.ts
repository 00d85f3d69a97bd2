import { HttpException, HttpStatus } from '@nestjs/common';

export class SampleNotFoundError extends HttpException {
  constructor(id: bigint | string) {
    super({ statusCode: 404, message: `sample ${id} not found` }, HttpStatus.NOT_FOUND);
  }
}

export class ThumbnailMissingError extends HttpException {
  constructor(id: bigint) {
    super({ statusCode: 404, message: `thumbnail of sample ${id} is no longer stored` }, HttpStatus.NOT_FOUND);
  }
}

export class NoEmbeddingError extends HttpException {
  constructor(id: bigint) {
    super({ statusCode: 400, message: [`id: sample ${id} has no embedding (the device sent none), so it has no neighbours`] }, HttpStatus.BAD_REQUEST);
  }
}
