import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactDownloadError, downloadArtifact } from './artifact-download';

const ARTIFACT = randomBytes(64 * 1024 + 17);
const SIGNED = { sha256: createHash('sha256').update(ARTIFACT).digest('hex'), length: ARTIFACT.length };

/** A hub stand-in whose answer to each request the test chooses. */
type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** Serves `body` from the requested range start, as a well-behaved server would. */
function serveRange(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
  if (start > 0) res.writeHead(206, { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': body.length - start });
  else res.writeHead(200, { 'content-length': body.length });
  res.end(body.subarray(start));
}

describe(downloadArtifact.name, () => {
  let server: Server;
  let url: string;
  let dir: string;
  let handler: Handler;
  let requests: Array<{ range: string | undefined; auth: string | undefined }>;

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'artifact-'));
    requests = [];
    server = createServer((req, res) => {
      requests.push({ range: req.headers.range, auth: req.headers.authorization });
      handler(req, res, requests.length);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/artifacts/v2`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const download = (over: Partial<Parameters<typeof downloadArtifact>[0]> = {}) =>
    downloadArtifact({ url, expected: SIGNED, dest: path.join(dir, 'head.bin'), attempts: 3, sleep: async () => undefined, ...over });
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => (err instanceof ArtifactDownloadError ? err.reason : String(err)));
  const leftovers = async () => (await fsp.readdir(dir)).sort();

  it('downloads and verifies the artifact, with the device credential', async () => {
    handler = (req, res) => serveRange(req, res, ARTIFACT);
    const file = await download({ headers: { authorization: 'Basic ZGV2OnB3' } });
    expect((await fsp.readFile(file)).equals(ARTIFACT)).toBe(true);
    expect(requests).toEqual([{ range: undefined, auth: 'Basic ZGV2OnB3' }]);
    expect(await leftovers()).toEqual(['head.bin']);
  });

  it('resumes with a Range request after the connection drops midway', async () => {
    const half = 30_000;
    handler = (req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-length': ARTIFACT.length });
        res.write(ARTIFACT.subarray(0, half), () => setTimeout(() => res.destroy(), 50));
        return;
      }
      serveRange(req, res, ARTIFACT);
    };
    const file = await download();
    expect((await fsp.readFile(file)).equals(ARTIFACT)).toBe(true);
    expect(requests).toHaveLength(2);
    expect(requests[1]?.range).toBe(`bytes=${half}-`);
  });

  it('starts over when the server ignores the range', async () => {
    handler = (_req, res, n) => {
      res.writeHead(200, { 'content-length': ARTIFACT.length });
      if (n === 1) res.write(ARTIFACT.subarray(0, 1000), () => setTimeout(() => res.destroy(), 50));
      else res.end(ARTIFACT);
    };
    expect((await fsp.readFile(await download())).equals(ARTIFACT)).toBe(true);
  });

  it('refuses a body that stays truncated, after its attempts', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.end(ARTIFACT.subarray(0, 100));
    };
    expect(await failure(download())).toBe('length_mismatch');
    expect(requests).toHaveLength(3);
  });

  it('stops reading an over-long body past the signed length, announced or not', async () => {
    handler = (_req, res) => {
      res.writeHead(200); // chunked: no length announced
      res.write(ARTIFACT);
      res.end(randomBytes(4096));
    };
    expect(await failure(download())).toBe('length_mismatch');
    expect(requests).toHaveLength(1);
    expect(await leftovers()).toEqual([]);

    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': ARTIFACT.length + 1 });
      res.end(Buffer.concat([ARTIFACT, Buffer.from('x')]));
    };
    expect(await failure(download())).toBe('length_mismatch');
  });

  it('refuses bytes that do not hash to the signed sha256 and keeps none of them', async () => {
    const wrong = Buffer.from(ARTIFACT);
    wrong[100] ^= 0xff;
    handler = (req, res) => serveRange(req, res, wrong);
    expect(await failure(download())).toBe('hash_mismatch');
    expect(await leftovers()).toEqual([]);
  });

  it('does not retry what retrying cannot fix (404), and retries a 503', async () => {
    handler = (_req, res) => res.writeHead(404).end();
    expect(await failure(download())).toBe('download_failed');
    expect(requests).toHaveLength(1);

    handler = (req, res, n) => (n === 2 ? res.writeHead(503).end() : serveRange(req, res, ARTIFACT));
    expect((await fsp.readFile(await download())).equals(ARTIFACT)).toBe(true);
    expect(requests).toHaveLength(3);
  });
});
