import { join, resolve } from 'node:path';
import { z } from 'zod';
import { cfg, ConfigError, type ConfigOf } from '@shelfsight/common';
import { FileBlobStore, type BlobStore } from './blob-store';
import { S3BlobStore } from './s3-blob-store';

/** Where the hub and its workers keep blobs (thumbnails, model artifacts, training rows): part of the hub's and the worker's settings. */
export const BLOB_CONFIG_SPEC = {
  blobStore: {
    env: 'BLOB_STORE',
    flag: 'blob-store',
    description:
      'where blobs (thumbnails, model artifacts, training rows) are kept: fs = files in DATA_DIR/blobs (one machine); s3 = an S3-compatible bucket (S3_BUCKET ...) shared by every hub replica and worker. `shelf blobs migrate --to s3` copies an fs hub\u2019s blobs into the bucket',
    schema: z.enum(['fs', 's3']).default('fs'),
  },
  s3Bucket: { env: 'S3_BUCKET', flag: 's3-bucket', description: 'BLOB_STORE=s3: the bucket (it must exist)', schema: cfg.optionalString() },
  s3Prefix: { env: 'S3_PREFIX', flag: 's3-prefix', description: 'BLOB_STORE=s3: key prefix of the blobs in the bucket (a blob is <prefix><sha256>)', schema: z.string().default('blobs/') },
  s3Endpoint: {
    env: 'S3_ENDPOINT',
    flag: 's3-endpoint',
    description: 'BLOB_STORE=s3: URL of an S3-compatible store (MinIO, Ceph, ...), e.g. http://minio:9000; unset = AWS S3 in S3_REGION',
    schema: cfg.url(['http', 'https']),
    secret: true,
  },
  s3Region: { env: 'S3_REGION', flag: 's3-region', description: 'BLOB_STORE=s3: the bucket\u2019s region', schema: cfg.string('us-east-1') },
  s3ForcePathStyle: {
    env: 'S3_FORCE_PATH_STYLE',
    flag: 's3-force-path-style',
    description: 'BLOB_STORE=s3: address objects as ENDPOINT/bucket/key instead of bucket.ENDPOINT/key (most self-hosted stores need it)',
    schema: cfg.bool(false),
  },
  s3AccessKeyId: {
    env: 'S3_ACCESS_KEY_ID',
    flag: 's3-access-key-id',
    description: 'BLOB_STORE=s3: access key id; unset (with S3_SECRET_ACCESS_KEY) = the AWS SDK\u2019s default chain (AWS_ACCESS_KEY_ID, profile, instance role)',
    schema: cfg.optionalString(),
    secret: true,
  },
  s3SecretAccessKey: { env: 'S3_SECRET_ACCESS_KEY', flag: 's3-secret-access-key', description: 'BLOB_STORE=s3: secret access key of S3_ACCESS_KEY_ID', schema: cfg.optionalString(), secret: true },
} as const;

export type BlobConfig = ConfigOf<typeof BLOB_CONFIG_SPEC>;

/** The configured blob store: DATA_DIR/blobs, or the bucket. Throws {@link ConfigError} for an s3 store without a bucket or with half its credentials. */
export function createBlobStore(config: BlobConfig & { dataDir: string }): BlobStore {
  if (config.blobStore === 'fs') return new FileBlobStore(join(resolve(config.dataDir), 'blobs'));
  return new S3BlobStore(s3Options(config));
}

export function s3Options(config: BlobConfig): ConstructorParameters<typeof S3BlobStore>[0] {
  if (!config.s3Bucket) throw new ConfigError('BLOB_STORE=s3 needs --s3-bucket / S3_BUCKET');
  if ((config.s3AccessKeyId === undefined) !== (config.s3SecretAccessKey === undefined)) {
    throw new ConfigError('--s3-access-key-id / S3_ACCESS_KEY_ID and --s3-secret-access-key / S3_SECRET_ACCESS_KEY go together (or neither: the AWS SDK\u2019s default chain)');
  }
  return {
    bucket: config.s3Bucket,
    prefix: config.s3Prefix,
    region: config.s3Region,
    ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
    forcePathStyle: config.s3ForcePathStyle,
    ...(config.s3AccessKeyId && config.s3SecretAccessKey ? { credentials: { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey } } : {}),
  };
}

/** The blob settings as environment variables, for a worker the hub starts (it must see the same store). */
export function blobStoreEnv(config: BlobConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, field] of Object.entries(BLOB_CONFIG_SPEC)) {
    const value = config[key as keyof BlobConfig];
    if (value !== undefined) env[field.env] = String(value);
  }
  return env;
}
