import { HttpException, HttpStatus } from '@nestjs/common';

export class CredentialNotFoundError extends HttpException {
  constructor(deviceId: string) {
    super({ statusCode: 404, message: `device ${deviceId} has no credential; create one with POST /devices/${deviceId}/credentials` }, HttpStatus.NOT_FOUND);
  }
}
