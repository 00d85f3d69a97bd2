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

/** A release key list that may not be published (not signed by the hub's root, expired, not newer). */
export class KeyListRefusedError extends HttpException {
  constructor(message: string) {
    super({ statusCode: 422, error: 'Unprocessable Entity', message }, HttpStatus.UNPROCESSABLE_ENTITY);
  }
}
