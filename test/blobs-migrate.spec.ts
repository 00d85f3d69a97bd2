import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FileBlobStore, S3BlobStore } from '@shelfsight/hub';
import { startS3Server, type TestS3Server } from './support/s3-server';

const SHELF = join(__dirname, '..', 'bin', 'shelf.js');

/** `shelf blobs migrate --to s3` as an operator runs it; its exit code, output and summary (last line). */
async function migrate(dataDir: string, s3: TestS3Server): Promise<{ code: number | null; output: string; summary: Record<string, unknown> }> {
  const child = spawn(process.execPath, [SHELF, 'blobs', 'migrate', '--to', 's3', '--data-dir', dataDir], { env: { ...process.env, ...s3.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const last = output.trim().split('\n').pop() ?? '';
  if (!last.startsWith('{')) throw new Error(`shelf blobs migrate exited ${code}:\n${output}`);
  return { code, output, summary: JSON.parse(last) as Record<string, unknown> };
}

describe('shelf blobs migrate --to s3', () => {
  let s3: TestS3Server;
  let dataDir: string;
  let target: S3BlobStore;

  beforeAll(async () => {
    s3 = await startS3Server();
    dataDir = mkdtempSync(join(tmpdir(), 'shelfsight-migrate-'));
    target = new S3BlobStore(s3.options);
  });

  afterAll(async () => {
    target?.close();
    await s3?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('copies a hub\u2019s fs blobs into the bucket, verified by hash, with progress, and resumes where it stopped', async () => {
    const local = new FileBlobStore(join(dataDir, 'blobs'));
    const blobs = [randomBytes(10), randomBytes(2 * 1024 * 1024), randomBytes(5000), randomBytes(70_000), randomBytes(1)];
    const keys: string[] = [];
    for (const b of blobs) keys.push((await local.put(b)).sha256);
    // A local file that no longer matches its name: reported, never copied.
    const rotten = (await local.put(randomBytes(300))).sha256;
    writeFileSync(local.pathOf(rotten), randomBytes(300));
    // An earlier, interrupted run: one blob already in the bucket, one there with torn bytes.
    await target.put(blobs[0]!);
    const raw = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.options.credentials! });
    await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `blobs/${keys[1]}`, Body: blobs[1]!.subarray(0, 1000) }));
    raw.destroy();

    const first = await migrate(dataDir, s3);
    expect(first.code).toBe(1);
    expect(first.summary).toMatchObject({ total: 6, present: 1, copied: 4, corrupt: 1, bytesCopied: blobs.slice(1).reduce((n, b) => n + b.length, 0) });
    expect(first.output).toMatch(/blobs .* -> s3:\/\/.*6\/6 100%/);
    expect(first.output).toContain(`${rotten} does not hash to its name: not copied`);
    for (const [i, key] of keys.entries()) expect((await target.get(key))?.equals(blobs[i]!)).toBe(true);
    expect(await target.has(rotten)).toBe(false);

    unlinkSync(local.pathOf(rotten));
    const again = await migrate(dataDir, s3);
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({ total: 5, present: 5, copied: 0, corrupt: 0 });
  }, 180_000);
});
