import { HttpException, HttpStatus } from '@nestjs/common';

export class LocationNotFoundError extends HttpException {
  constructor(code: string, site?: string) {
    super({ statusCode: 404, message: `location ${code}${site ? ` in site ${site}` : ''} not found` }, HttpStatus.NOT_FOUND);
  }
}

export class AmbiguousLocationError extends HttpException {
  constructor(code: string, sites: string[]) {
    super({ statusCode: 400, message: [`site: location ${code} exists in several sites (${sites.join(', ')}); pass site`] }, HttpStatus.BAD_REQUEST);
  }
}
