import { join } from 'node:path';
import { Global, Module } from '@nestjs/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { BLOB_STORE, FileBlobStore } from './blob-store';

/** The hub's blob store: files under DATA_DIR/blobs. */
@Global()
@Module({
  providers: [{ provide: BLOB_STORE, inject: [HUB_CONFIG], useFactory: (config: HubConfig) => new FileBlobStore(join(config.dataDir, 'blobs')) }],
  exports: [BLOB_STORE],
})
export class BlobsModule {}
