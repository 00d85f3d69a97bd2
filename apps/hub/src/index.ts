export { startHub, type HubHandle, type StartHubOptions } from './hub';
export { HUB_CONFIG_SPEC, loadHubConfig, type HubConfig } from './config/hub-config';
export { TrainingWorker, prepareWorkDir } from './training/worker/training-worker';
export { WORKER_CONFIG_SPEC, loadWorkerConfig, type WorkerConfig } from './training/worker/worker-config';
export { createModelRegistry, ModelsService, type RegisterModelInput, type RegisterModelResult, type ModelLineageInput } from './models/models.service';
