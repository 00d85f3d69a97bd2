export { startHub, type HubHandle, type StartHubOptions } from './hub';
export { HUB_CONFIG_SPEC, loadHubConfig, type HubConfig } from './config/hub-config';
export { RetentionService } from './retention/retention.service';
export { buildIngestMessages, runWriterStage, startDecodeStage, type DecodeStage, type DecodeStageStats, type WriterStageResult } from './ingest/ingest-stages';
export { IngestRepository, type IngestCommit, type IngestMessage } from './ingest/ingest.repository';
