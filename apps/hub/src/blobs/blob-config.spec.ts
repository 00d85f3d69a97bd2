import { loadHubConfig } from '../config/hub-config';
import { loadWorkerConfig } from '../training/worker/worker-config';
import { blobStoreEnv, s3Options } from './blob-config';

describe(blobStoreEnv.name, () => {
  it('hands the hub\u2019s blob settings, flags included, to the worker it starts', () => {
    const hub = loadHubConfig({ s3Bucket: 'from-flag', s3ForcePathStyle: true }, { BLOB_STORE: 's3', S3_ENDPOINT: 'http://minio:9000', S3_ACCESS_KEY_ID: 'id', S3_SECRET_ACCESS_KEY: 'secret' });
    const sut = blobStoreEnv(hub);
    const worker = loadWorkerConfig({}, { DATABASE_URL: 'postgres://db/x', ...sut });
    expect(worker.blobStore).toBe('s3');
    expect(s3Options(worker)).toEqual(s3Options(hub));
    expect(s3Options(worker)).toMatchObject({ bucket: 'from-flag', forcePathStyle: true, endpoint: 'http://minio:9000', prefix: 'blobs/', credentials: { accessKeyId: 'id', secretAccessKey: 'secret' } });
  });

  it('leaves unset settings unset (the SDK\u2019s own credential chain stays in charge)', () => {
    const sut = blobStoreEnv(loadHubConfig({}, {}));
    expect(sut).toEqual({ BLOB_STORE: 'fs', S3_PREFIX: 'blobs/', S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: 'false' });
  });
});
