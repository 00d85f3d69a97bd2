import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { Request } from 'express';
import { HttpException } from '@nestjs/common';
import { readArtifactBody, type UploadRefusal } from './upload-body';

/** A request whose body arrives in `chunks`, like Express's (a readable with headers). */
function request(chunks: Buffer[] | (() => AsyncGenerator<Buffer>), headers: Record<string, string> = { 'content-type': 'application/gzip' }): Request {
  const body = typeof chunks === 'function' ? Readable.from(chunks()) : Readable.from(chunks);
  return Object.assign(body, { headers, res: { headersSent: false, setHeader: jest.fn() } }) as unknown as Request;
}

const LIMITS = { modelUploadMaxBytes: 64 * 1024 * 1024, modelUploadMaxInflatedBytes: 4 * 1024 * 1024 };

describe(readArtifactBody.name, () => {
  const refused: UploadRefusal[] = [];
  beforeEach(() => (refused.length = 0));
  const sut = (req: Request, limits = LIMITS) => readArtifactBody(req, limits, (r) => refused.push(r));
  const status = (err: unknown) => (err as HttpException).getStatus();

  it('passes a tar through and decompresses a gzipped one, arriving in pieces', async () => {
    const tar = Buffer.alloc(3 * 1024 * 1024, 7);
    expect((await sut(request([tar.subarray(0, 1), tar.subarray(1)], { 'content-type': 'application/x-tar' }))).equals(tar)).toBe(true);
    const gz = gzipSync(tar);
    expect((await sut(request([gz.subarray(0, 1), gz.subarray(1, 100), gz.subarray(100)]))).equals(tar)).toBe(true);
    expect(refused).toEqual([]);
  });

  it('refuses a gzip bomb with 413 once its output passes the inflated limit, long before the end of the body, and counts it', async () => {
    // 1 GiB of zeros as 256 gzip members of 4 MiB each (~4 KB apiece): sent lazily, so the test sees how much was read.
    const member = gzipSync(Buffer.alloc(4 * 1024 * 1024));
    let sent = 0;
    async function* bomb(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 256; i++) {
        sent += member.length;
        yield member;
      }
    }
    const req = request(bomb);
    const err = await sut(req).catch((e: unknown) => e);
    expect(status(err)).toBe(413);
    expect((err as Error).message).toMatch(/MODEL_UPLOAD_MAX_INFLATED_BYTES \(4194304\)/);
    expect(refused).toEqual(['inflated-too-large']);
    // Stops within a few streams' buffers of input (64 KiB high-water marks since Node 22, 16 KiB before), not at the end.
    expect(sent).toBeLessThan(member.length * 32);
    expect(req.res?.setHeader).toHaveBeenCalledWith('Connection', 'close');
  });

  it('refuses gzip inside gzip (the unpacker would decompress the inner one whole)', async () => {
    const err = await sut(request([gzipSync(gzipSync(Buffer.alloc(1024 * 1024)))])).catch((e: unknown) => e);
    expect(status(err)).toBe(400);
    expect(refused).toEqual(['bad-gzip']);
  });

  it('refuses a body over the upload limit, declared or sent, a broken gzip and an empty body', async () => {
    const small = { ...LIMITS, modelUploadMaxBytes: 1024 };
    expect(status(await sut(request([Buffer.alloc(10)], { 'content-type': 'application/x-tar', 'content-length': '2048' }), small).catch((e: unknown) => e))).toBe(413);
    expect(status(await sut(request([Buffer.alloc(600), Buffer.alloc(600)], { 'content-type': 'application/x-tar' }), small).catch((e: unknown) => e))).toBe(413);
    expect(status(await sut(request([Buffer.from([0x1f, 0x8b, 1, 2, 3, 4])])).catch((e: unknown) => e))).toBe(400);
    expect(status(await sut(request([])).catch((e: unknown) => e))).toBe(400);
    expect(refused).toEqual(['upload-too-large', 'upload-too-large', 'bad-gzip', 'empty-upload']);
  });
});
