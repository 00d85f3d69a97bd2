import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { ConfigError } from '@shelfsight/common';
import { createBlobStore, FileBlobStore, loadHubConfig, S3BlobStore, SampleWriter } from '@shelfsight/hub';
import { blobStoreContract } from './support/blob-store-contract';
import { FakeDevice } from './support/fake-device';
import { startS3Server, type TestS3Server } from './support/s3-server';
import { jpegThumbnail, registerTestBackbone, sampleMessage } from './support/samples';
import { hasExternalPostgres } from './support/services';
import { eventually, getJson, hubFetch, startTestHub, startTestReplica, type TestHub } from './support/test-hub';

blobStoreContract('fs (DATA_DIR/blobs)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'shelfsight-blobs-'));
  const store = new FileBlobStore(root);
  return {
    store,
    corrupt: async (sha256, bytes) => writeFileSync(store.pathOf(sha256), bytes),
    close: async () => rmSync(root, { recursive: true, force: true }),
  };
});

blobStoreContract('s3 (s3rver from npm)', async () => {
  const server = await startS3Server();
  const store = new S3BlobStore(server.options);
  const raw = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: server.options.credentials! });
  return {
    store,
    corrupt: async (sha256, bytes) => {
      await raw.send(new PutObjectCommand({ Bucket: server.bucket, Key: `blobs/${sha256}`, Body: bytes }));
    },
    close: async () => {
      raw.destroy();
      store.close();
      await server.stop();
    },
  };
});

describe('BLOB_STORE settings', () => {
  it('fs is the default: DATA_DIR/blobs', () => {
    const config = loadHubConfig({}, { DATA_DIR: '/tmp/x' });
    expect(config.blobStore).toBe('fs');
    expect(createBlobStore(config)).toBeInstanceOf(FileBlobStore);
  });

  it('s3 needs a bucket, both keys or neither, and shows no secret in its errors', () => {
    expect(() => createBlobStore(loadHubConfig({}, { BLOB_STORE: 's3' }))).toThrow(ConfigError);
    expect(() => createBlobStore(loadHubConfig({}, { BLOB_STORE: 's3', S3_BUCKET: 'b', S3_ACCESS_KEY_ID: 'AKIA' }))).toThrow('go together');
    const store = createBlobStore(loadHubConfig({}, { BLOB_STORE: 's3', S3_BUCKET: 'b', S3_ENDPOINT: 'http://minio:9000', S3_FORCE_PATH_STYLE: 'true' }));
    expect(store).toBeInstanceOf(S3BlobStore);
    (store as S3BlobStore).close();
    let message = '';
    try {
      loadHubConfig({}, { BLOB_STORE: 's3', S3_BUCKET: 'b', S3_ENDPOINT: 'ftp://user:hunter2hunter2@minio', S3_SECRET_ACCESS_KEY: 'x' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('S3_ENDPOINT');
    expect(message).not.toContain('hunter2');
    expect(() => loadHubConfig({}, { BLOB_STORE: 'gcs' })).toThrow('BLOB_STORE');
  });
});

const d = hasExternalPostgres() ? describe : describe.skip;
d('two hubs on one PostgreSQL and one bucket (BLOB_STORE=s3)', () => {
  let s3: TestS3Server;
  let a: TestHub;
  let b: Awaited<ReturnType<typeof startTestReplica>>;
  const devices: FakeDevice[] = [];

  beforeAll(async () => {
    s3 = await startS3Server();
    a = await startTestHub('postgres', 'aedes', s3.env);
    // The second replica: same database and bucket, its own DATA_DIR (nothing shared on disk).
    b = await startTestReplica(a);
    await registerTestBackbone(a.hub.databaseUrl, 'test-backbone');
  }, 180_000);

  afterAll(async () => {
    for (const dev of devices) await dev.close();
    await b?.stop();
    await a?.stop();
    await s3?.stop();
  }, 120_000);

  it('a sample stored through one hub has its thumbnail served by the other, from the bucket', async () => {
    const site = `s3-${randomBytes(3).toString('hex')}`;
    const dev = await FakeDevice.connect(a.hub.mqttUrl, `cam-${site}`);
    devices.push(dev);
    const thumbnail = await jpegThumbnail(4242);
    await dev.sendRaw('samples', JSON.stringify(await sampleMessage(dev.id, { site, thumbnail })));
    await a.hub.app.get(SampleWriter).idle();
    const items = await eventually(async () => {
      const page = (await getJson<{ items: Array<{ id: string }> }>(`${b.hub.httpUrl}/samples?site=${site}`)).body.items;
      return page.length > 0 ? page : undefined;
    }, 60_000, 'the sample, listed by the second hub');

    const res = await hubFetch(`${b.hub.httpUrl}/samples/${items[0]!.id}/thumbnail`);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(thumbnail)).toBe(true);
    expect(res.headers.get('etag')).toBe(`"${createHash('sha256').update(thumbnail).digest('hex')}"`);
    // Ranges of it, from the bucket too.
    const part = await hubFetch(`${b.hub.httpUrl}/samples/${items[0]!.id}/thumbnail`, { headers: { range: 'bytes=10-109' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-109/${thumbnail.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(thumbnail.subarray(10, 110))).toBe(true);
    const beyond = await hubFetch(`${b.hub.httpUrl}/samples/${items[0]!.id}/thumbnail`, { headers: { range: `bytes=${thumbnail.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${thumbnail.length}`);
    // Not on either hub's disk: in the bucket.
    expect(await new FileBlobStore(join(a.dataDir, 'blobs')).has(createHash('sha256').update(thumbnail).digest('hex'))).toBe(false);
    expect(await new FileBlobStore(join(b.dataDir, 'blobs')).has(createHash('sha256').update(thumbnail).digest('hex'))).toBe(false);
  });
});
