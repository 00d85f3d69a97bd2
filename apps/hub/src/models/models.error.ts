import { HttpException, HttpStatus } from '@nestjs/common';

/** The uploaded artifact (or its training rows) is damaged or inconsistent: 422 with the reason. */
export class InvalidModelArtifactError extends HttpException {
  constructor(readonly reason: string) {
    super({ statusCode: 422, error: 'Unprocessable Entity', message: reason }, HttpStatus.UNPROCESSABLE_ENTITY);
  }
}

/** The request body is not an artifact archive at all (empty, too large, wrong type): 400. */
export class BadModelUploadError extends HttpException {
  constructor(message: string, status: HttpStatus = HttpStatus.BAD_REQUEST) {
    super({ statusCode: status, message }, status);
  }
}

export class ModelVersionNotFoundError extends HttpException {
  constructor(version: string) {
    super({ statusCode: 404, message: `model version ${version} not found` }, HttpStatus.NOT_FOUND);
  }
}

/** A version id registered before with a different artifact. */
export class ModelVersionConflictError extends HttpException {
  constructor(version: string) {
    super({ statusCode: 409, message: `model version ${version} is registered with a different artifact` }, HttpStatus.CONFLICT);
  }
}

/** Two versions of different category sets (or evaluation sets) cannot be compared. */
export class IncomparableModelsError extends HttpException {
  constructor(message: string) {
    super({ statusCode: 409, message }, HttpStatus.CONFLICT);
  }
}

/** A gate override the version does not qualify for (releasable already, or refused for a regression): 409. */
export class GateOverrideRefusedError extends HttpException {
  constructor(message: string) {
    super({ statusCode: 409, message }, HttpStatus.CONFLICT);
  }
}
