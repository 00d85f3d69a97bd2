import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FileBlobStore, InvalidBlobKeyError } from './blob-store';

describe(FileBlobStore.name, () => {
  const root = () => mkdtempSync(join(tmpdir(), 'shelfsight-blobs-'));

  it('stores bytes under their sha256, once, and reads them back', async () => {
    const dir = root();
    const sut = new FileBlobStore(dir);
    const data = Buffer.from('a thumbnail');
    const first = await sut.put(data);
    const again = await sut.put(Buffer.from('a thumbnail'));
    expect(first).toEqual({ sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length });
    expect(again).toEqual(first);
    expect(readdirSync(join(dir, first.sha256.slice(0, 2)))).toEqual([first.sha256]);
    expect((await sut.get(first.sha256))?.toString()).toBe('a thumbnail');
    expect(await sut.has(first.sha256)).toBe(true);
    const opened = await sut.open(first.sha256);
    expect(opened?.bytes).toBe(data.length);
    opened?.stream.destroy();
  });

  it('answers undefined for an absent blob and forgets a deleted one', async () => {
    const sut = new FileBlobStore(root());
    const { sha256 } = await sut.put(Buffer.from('x'));
    await sut.delete(sha256);
    expect(await sut.get(sha256)).toBeUndefined();
    expect(await sut.open(sha256)).toBeUndefined();
    expect(await sut.has(sha256)).toBe(false);
  });

  it('refuses keys that are not sha256 hex (no path traversal)', async () => {
    const sut = new FileBlobStore(root());
    await expect(sut.get('../../etc/passwd')).rejects.toThrow(InvalidBlobKeyError);
  });
});
