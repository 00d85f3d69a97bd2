import { HttpException, HttpStatus } from '@nestjs/common';

export class ApiKeyNotFoundError extends HttpException {
  constructor(id: string) {
    super({ statusCode: 404, message: `no API key with id ${id}` }, HttpStatus.NOT_FOUND);
  }
}

/** A key may only create keys with at most its own role and lifetime. */
export class ApiKeyTooPowerfulError extends HttpException {
  constructor(message: string) {
    super({ statusCode: 403, error: 'Forbidden', message }, HttpStatus.FORBIDDEN);
  }
}

export class BootstrapKeyError extends HttpException {
  constructor() {
    super({ statusCode: 400, message: 'the bootstrap key (HUB_API_KEY) is configuration, not a stored key: change or unset the setting instead' }, HttpStatus.BAD_REQUEST);
  }
}
