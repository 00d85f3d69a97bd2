import { HttpException, HttpStatus } from '@nestjs/common';

export class TrainingJobNotFoundError extends HttpException {
  constructor(id: string) {
    super({ statusCode: 404, error: 'Not Found', message: `training job ${id} does not exist` }, HttpStatus.NOT_FOUND);
  }
}

export class TrainingJobStateError extends HttpException {
  constructor(message: string) {
    super({ statusCode: 409, error: 'Conflict', message }, HttpStatus.CONFLICT);
  }
}

export class TrainingBaseError extends HttpException {
  constructor(message: string) {
    super({ statusCode: 400, error: 'Bad Request', message }, HttpStatus.BAD_REQUEST);
  }
}

export class TrainingQueueUnavailableError extends HttpException {
  constructor(message: string) {
    super({ statusCode: 503, error: 'Service Unavailable', message }, HttpStatus.SERVICE_UNAVAILABLE);
  }
}
