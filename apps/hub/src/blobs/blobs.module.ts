import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { createBlobStore } from './blob-config';
import { BLOB_STORE, type BlobStore } from './blob-store';
import { S3BlobStore } from './s3-blob-store';

/** The hub's blob store: files under DATA_DIR/blobs, or the S3-compatible bucket of BLOB_STORE=s3. */
@Global()
@Module({
  providers: [{ provide: BLOB_STORE, inject: [HUB_CONFIG], useFactory: (config: HubConfig) => createBlobStore(config) }],
  exports: [BLOB_STORE],
})
export class BlobsModule implements OnApplicationShutdown {
  constructor(@Inject(BLOB_STORE) private readonly blobs: BlobStore) {}

  onApplicationShutdown(): void {
    if (this.blobs instanceof S3BlobStore) this.blobs.close();
  }
}
