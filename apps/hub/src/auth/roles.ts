import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';

/**
 * Who may call an endpoint. Roles are ordered: an admin may do what an operator may, an
 * operator what a viewer may.
 * - viewer: inventory, history, locations, detections, devices (read);
 * - operator: samples and labels, corrections, training, models, rollouts;
 * - admin: API keys, device provisioning, settings, audit.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const REQUIRED_ROLE_KEY = 'shelfsight:required-role';

/**
 * Mark a controller or handler with the least role that may call it; the OpenAPI document
 * then lists the guard's answers: 401 without a valid key, 403 for a key below `role`.
 */
export const RequireRole = (role: Role): ClassDecorator & MethodDecorator =>
  applyDecorators(
    SetMetadata(REQUIRED_ROLE_KEY, role),
    ApiUnauthorizedResponse({ description: 'no API key, or an unknown, revoked or expired one' }),
    ApiForbiddenResponse({ description: `the key's role is below ${role}` }),
  );

/** Mark a handler (or controller) as open to anyone, without a key (health, docs). */
export const PUBLIC_KEY = 'shelfsight:public';
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(PUBLIC_KEY, true);

export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** The route also admits the METRICS_TOKEN scrape token (GET /metrics). */
export const SCRAPE_TOKEN_KEY = 'shelfsight:scrape-token';
export const ScrapeToken = (): ClassDecorator & MethodDecorator => SetMetadata(SCRAPE_TOKEN_KEY, true);

/**
 * The route also admits devices by their MQTT credential (HTTP basic auth, username = device
 * id) or a rollout download token (`Bearer sdt_…`): the guard lets such a request through to
 * the handler, which must verify it itself (rollout artifact downloads). Requests with an API
 * key are checked by role as usual.
 */
export const DEVICE_CREDENTIAL_KEY = 'shelfsight:device-credential';
export const DeviceCredential = (): ClassDecorator & MethodDecorator => SetMetadata(DEVICE_CREDENTIAL_KEY, true);
