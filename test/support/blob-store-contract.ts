import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BlobIntegrityError, type BlobStore } from '@shelfsight/hub';

export interface BlobStoreUnderTest {
  store: BlobStore;
  /** Overwrite the stored object of `sha256` with other bytes, behind the store's back (a corrupted disk or bucket). */
  corrupt(sha256: string, bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function drain(stream: Readable): Promise<{ bytes: Buffer; chunks: number }> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return { bytes: Buffer.concat(parts), chunks: parts.length };
}

/**
 * What every BlobStore promises (BLOB_STORE=fs and BLOB_STORE=s3 alike): content addresses,
 * one copy of equal bytes, streamed reads with ranges, absent keys as undefined, corruption
 * refused. `make` returns a fresh, empty store.
 */
export function blobStoreContract(name: string, make: () => Promise<BlobStoreUnderTest>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let sut: BlobStoreUnderTest;
    beforeAll(async () => {
      sut = await make();
    });
    afterAll(async () => {
      await sut?.close();
    });

    it('stores bytes under their sha256, once, and reads them back whole', async () => {
      const data = randomBytes(1000);
      const first = await sut.store.put(data);
      expect(first).toEqual({ sha256: sha(data), bytes: 1000 });
      expect(await sut.store.put(Buffer.from(data))).toEqual(first);
      expect(await sut.store.has(first.sha256)).toBe(true);
      expect((await sut.store.get(first.sha256))?.equals(data)).toBe(true);
    });

    it('streams a large object in pieces, whole or a range, with the object size', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const { sha256 } = await sut.store.put(data);
      const whole = await sut.store.open(sha256);
      expect(whole?.bytes).toBe(data.length);
      const read = await drain(whole!.stream);
      expect(read.bytes.equals(data)).toBe(true);
      // Streamed, not handed over as one buffer.
      expect(read.chunks).toBeGreaterThan(1);

      for (const [start, end] of [
        [0, 0],
        [10, 4095],
        [1024 * 1024, 2 * 1024 * 1024 - 1],
        [data.length - 5, data.length - 1],
      ] as const) {
        const part = await sut.store.open(sha256, { start, end });
        expect(part?.bytes).toBe(data.length);
        expect((await drain(part!.stream)).bytes.equals(data.subarray(start, end + 1))).toBe(true);
      }
    });

    it('answers undefined / false for a missing key and forgets a deleted one', async () => {
      const missing = sha(randomBytes(8));
      expect(await sut.store.get(missing)).toBeUndefined();
      expect(await sut.store.open(missing)).toBeUndefined();
      expect(await sut.store.open(missing, { start: 0, end: 3 })).toBeUndefined();
      expect(await sut.store.has(missing)).toBe(false);
      await sut.store.delete(missing);

      const { sha256 } = await sut.store.put(randomBytes(50));
      await sut.store.delete(sha256);
      expect(await sut.store.has(sha256)).toBe(false);
      expect(await sut.store.get(sha256)).toBeUndefined();
    });

    it('refuses keys that are not sha256 hex', async () => {
      await expect(sut.store.get('../../etc/passwd')).rejects.toThrow('not a blob key');
      await expect(sut.store.open('ABC')).rejects.toThrow('not a blob key');
      await expect(sut.store.has(`${'a'.repeat(63)}/`)).rejects.toThrow('not a blob key');
    });

    it('refuses bytes that do not hash to their key: get rejects, a whole stream ends in an error', async () => {
      const data = randomBytes(200_000);
      const { sha256 } = await sut.store.put(data);
      const tampered = Buffer.from(data);
      tampered[12345] ^= 0xff;
      await sut.corrupt(sha256, tampered);
      await expect(sut.store.get(sha256)).rejects.toBeInstanceOf(BlobIntegrityError);
      const opened = await sut.store.open(sha256);
      await expect(drain(opened!.stream)).rejects.toBeInstanceOf(BlobIntegrityError);
    });
  });
}
