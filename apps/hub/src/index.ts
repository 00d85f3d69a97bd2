export { startHub, type HubHandle, type StartHubOptions } from './hub';
export { HUB_CONFIG_SPEC, loadHubConfig, type HubConfig } from './config/hub-config';
export { listRouteRules, type RouteRule } from './auth/route-rules';
export { RetentionService } from './retention/retention.service';
