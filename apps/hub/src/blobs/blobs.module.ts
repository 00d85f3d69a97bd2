import { join, resolve } from 'node:path';
import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { redactUrl } from '@shelfsight/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { createBlobStore } from './blob-config';
import { BLOB_STORE, type BlobStore } from './blob-store';
import { S3BlobStore } from './s3-blob-store';

/** The hub's blob store: files under DATA_DIR/blobs, or the S3-compatible bucket of BLOB_STORE=s3. */
@Global()
@Module({
  providers: [
    {
      provide: BLOB_STORE,
      inject: [HUB_CONFIG],
      useFactory: (config: HubConfig) => {
        const store = createBlobStore(config);
        const where = store instanceof S3BlobStore ? `${store.describe()}${config.s3Endpoint ? ` at ${redactUrl(config.s3Endpoint)}` : ''}` : join(resolve(config.dataDir), 'blobs');
        new Logger('Blobs').log(`blob store: ${where}`);
        return store;
      },
    },
  ],
  exports: [BLOB_STORE],
})
export class BlobsModule implements OnApplicationShutdown {
  constructor(@Inject(BLOB_STORE) private readonly blobs: BlobStore) {}

  onApplicationShutdown(): void {
    if (this.blobs instanceof S3BlobStore) this.blobs.close();
  }
}
