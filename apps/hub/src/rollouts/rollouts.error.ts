import { HttpException, HttpStatus } from '@nestjs/common';

export class RolloutNotFoundError extends HttpException {
  constructor(id: string) {
    super({ statusCode: 404, message: `rollout ${id} not found` }, HttpStatus.NOT_FOUND);
  }
}

/** A device of the target is held by another unfinished rollout. */
export class RolloutConflictError extends HttpException {
  constructor(rolloutId: string, deviceId: string) {
    super(
      { statusCode: 409, message: `device ${deviceId} is in unfinished rollout ${rolloutId}; abort it, roll it back or let it complete first`, rolloutId, deviceId },
      HttpStatus.CONFLICT,
    );
  }
}

/** The version may not be rolled out (gate verdict, unknown version, empty target, foreign backbone). */
export class RolloutRefusedError extends HttpException {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super({ statusCode: 422, message, ...extra }, HttpStatus.UNPROCESSABLE_ENTITY);
  }
}

/** pause/resume/abort/rollback from a state that does not allow it. */
export class RolloutStateError extends HttpException {
  constructor(id: string, action: string, state: string) {
    super({ statusCode: 409, message: `rollout ${id} is ${state}: cannot ${action}`, rolloutId: id, state }, HttpStatus.CONFLICT);
  }
}

/** The device artifact route: who may not read. */
export class ArtifactAccessError extends HttpException {
  constructor(status: 401 | 403 | 404, message: string) {
    super(
      { statusCode: status, error: status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found', message },
      status,
    );
  }
}

export class SigningKeyInUseError extends HttpException {
  constructor(keyId: string) {
    super({ statusCode: 409, message: `key ${keyId} signs rollouts now; rotate first (set ROLLOUT_SIGNING_KEY to a new key), then retire it` }, HttpStatus.CONFLICT);
  }
}

export class SigningKeyNotFoundError extends HttpException {
  constructor(keyId: string) {
    super({ statusCode: 404, message: `no trusted rollout signing key ${keyId}` }, HttpStatus.NOT_FOUND);
  }
}
