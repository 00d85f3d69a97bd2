export { startHub, type HubHandle, type StartHubOptions } from './hub';
export { HUB_CONFIG_SPEC, loadHubConfig, type HubConfig } from './config/hub-config';
export { ModelsService, type RegisterModelInput, type RegisterModelResult, type ModelLineageInput } from './models/models.service';
