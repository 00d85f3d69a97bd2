export { startHub, type HubHandle, type StartHubOptions } from './hub';
export { HUB_CONFIG_SPEC, loadHubConfig, type HubConfig } from './config/hub-config';
export { SimilarIndex } from './samples/similar-index';
export { RetentionService } from './retention/retention.service';
export { BLOB_STORE, type BlobStore } from './blobs/blob-store';
export { SampleWriter } from './samples/sample-writer';
export { SamplePurgeService } from './samples/sample-purge.service';
export { DisagreementChecker } from './disputes/disagreement-checker';
