import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { MANIFEST_FILE, OUTPUTS_FILE, LABELS_FILE, WEIGHTS_FILE, ArtifactVerificationError, type ArtifactFiles } from './model-artifact';
import { TRAINING_ROWS_FILE } from './training-rows';

/**
 * How a model artifact travels over HTTP (`POST /models`, `GET /models/:version/artifact`):
 * a tar (optionally gzipped) of the artifact folder's files, flat or under one folder —
 * `manifest.json`, `head.bin`, `labels.txt`, `outputs.txt` when present, and the training
 * rows (`training-rows.bin`) when available. Other entries (logs, plots) are ignored.
 * The hub's canonical tar (what it stores and serves) has those files in that order,
 * mtime 0, mode 0644, so the same artifact always has the same SHA-256.
 */
export interface ArtifactArchive extends ArtifactFiles {
  trainingRows?: Buffer;
}

const ENTRY_FILES: Record<string, keyof ArtifactArchive> = {
  [MANIFEST_FILE]: 'manifest',
  [WEIGHTS_FILE]: 'weights',
  [LABELS_FILE]: 'labels',
  [OUTPUTS_FILE]: 'outputs',
  [TRAINING_ROWS_FILE]: 'trainingRows',
};
/** The artifact folder's file names the archive carries, in canonical order. */
export const ARCHIVE_FILES = Object.keys(ENTRY_FILES);

export async function packArtifact(files: ArtifactArchive): Promise<Buffer> {
  const p = pack();
  const done = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const [name, key] of Object.entries(ENTRY_FILES)) {
    const data = files[key];
    if (!data) continue;
    await new Promise<void>((resolve, reject) => p.entry({ name, size: data.length, mtime: new Date(0), mode: 0o644 }, data, (err) => (err ? reject(err) : resolve())));
  }
  p.finalize();
  return done;
}

/** Unpack an uploaded archive (tar or tar.gz); refuses one without the three required files. */
export async function unpackArtifact(body: Buffer): Promise<ArtifactArchive> {
  let tarBytes = body;
  if (body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b) {
    try {
      tarBytes = gunzipSync(body);
    } catch {
      throw new ArtifactVerificationError('the body is gzip but does not decompress');
    }
  }
  const found: Partial<Record<keyof ArtifactArchive, Buffer>> = {};
  const x = extract();
  try {
    const reading = (async () => {
      for await (const entry of x) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        if (entry.header.type !== 'file') continue;
        const base = entry.header.name.split('/').filter((s) => s && s !== '.').pop() ?? '';
        const key = ENTRY_FILES[base];
        if (key) found[key] = Buffer.concat(chunks);
      }
    })();
    Readable.from([tarBytes]).pipe(x);
    await reading;
  } catch (err) {
    throw new ArtifactVerificationError(`the body is not a tar archive of an artifact folder (${(err as Error).message})`);
  }
  const missing = [MANIFEST_FILE, WEIGHTS_FILE, LABELS_FILE].filter((f) => !found[ENTRY_FILES[f] as keyof ArtifactArchive]);
  if (missing.length > 0) throw new ArtifactVerificationError(`the archive lacks ${missing.join(', ')}`);
  return found as ArtifactArchive;
}
