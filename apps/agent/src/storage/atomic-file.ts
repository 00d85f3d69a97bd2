import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/**
 * Replace `file` with `data` atomically: write `<file>.tmp`, fsync it, rename it over the
 * file, fsync the directory. A crash at any moment leaves the old content or the new one.
 */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp`;
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  await syncDir(path.dirname(file));
}

/** fsync a directory, so a rename or a new file in it is durable. */
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  } finally {
    await fh?.close();
  }
}
