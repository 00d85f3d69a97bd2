import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { createProgress, loadConfig } from '@shelfsight/common';
import { BLOB_CONFIG_SPEC, FileBlobStore, HUB_CONFIG_SPEC, migrateBlobs, S3BlobStore, s3Options } from '@shelfsight/hub';
import { addConfigOptions, flagsFrom } from '../options';

const { blobStore: _source, ...S3_SETTINGS } = BLOB_CONFIG_SPEC;

const MIGRATE_SPEC = {
  to: { env: 'SHELF_BLOBS_MIGRATE_TO', flag: 'to', description: 'the store to copy into: s3 (the bucket of the S3_* settings)', schema: z.enum(['s3']) },
  dataDir: { ...HUB_CONFIG_SPEC.dataDir, description: 'the hub\u2019s DATA_DIR: its blobs are read from DATA_DIR/blobs' },
  ...S3_SETTINGS,
};

/** `shelf blobs …`: the hub's blob store. */
export function registerBlobs(program: Command): void {
  const blobs = program.command('blobs').description('The hub\u2019s blob store (thumbnails, model artifacts, training rows)');
  const migrate = blobs
    .command('migrate')
    .description(
      'Copy a single hub\u2019s blobs (DATA_DIR/blobs) into the S3-compatible bucket, then start hubs and workers with BLOB_STORE=s3. Resumable: blobs already in the bucket with the right hash are skipped. Verified: every file is hashed before upload and every upload read back. Progress on stderr; last line a JSON summary; exit 1 if a local blob is corrupt',
    );
  addConfigOptions(migrate, MIGRATE_SPEC);
  migrate.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(MIGRATE_SPEC, flagsFrom(MIGRATE_SPEC, opts));
    const target = new S3BlobStore(s3Options({ ...c, blobStore: 's3' }));
    const source = join(resolve(c.dataDir), 'blobs');
    let progress: ReturnType<typeof createProgress> | undefined;
    try {
      const started = Date.now();
      const r = await migrateBlobs(new FileBlobStore(source), target, (p) => {
        progress ??= createProgress(`blobs ${source} -> ${target.describe()}`, p.total);
        progress.tick(1, p.outcome);
      });
      progress?.done();
      for (const key of r.corrupt) process.stderr.write(`shelf blobs migrate: ${join(source, key.slice(0, 2), key)} does not hash to its name: not copied\n`);
      process.stdout.write(JSON.stringify({ from: source, to: target.describe(), ...r, corrupt: r.corrupt.length, seconds: +((Date.now() - started) / 1000).toFixed(2) }) + '\n');
      if (r.corrupt.length > 0) process.exitCode = 1;
    } finally {
      target.close();
    }
  });
}
