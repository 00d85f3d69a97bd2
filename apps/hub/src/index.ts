export { startHub, type HubHandle, type StartHubOptions } from './hub';
export { HUB_CONFIG_SPEC, loadHubConfig, type HubConfig } from './config/hub-config';
export { RetentionService } from './retention/retention.service';
export { createModelRegistry, ModelsService, type RegisterModelInput, type RegisterModelResult, type ModelLineageInput } from './models/models.service';
export { BLOB_STORE, FileBlobStore, type BlobStore } from './blobs/blob-store';
export { PrismaService } from './prisma/prisma.service';
