import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Outbox, OutboxFullError, type NewDetection } from './outbox';

function detection(n: number): NewDetection {
  return {
    frameId: `frame-${n}`,
    site: 'site-1',
    location: 'A-01-1-A',
    capturedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    category: 'milk',
    confidence: 0.9,
    topK: [{ category: 'milk', confidence: 0.9 }],
    modelVersion: 'm1',
    latencyMs: 1,
  };
}

describe(Outbox.name, () => {
  let dir: string;
  const open = () => Outbox.open(dir, { maxBytes: 1024 * 1024, compactMinBytes: 512 });

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'outbox-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('numbers detections from 1 and keeps them until acked', async () => {
    const { outbox: sut } = await open();
    const stored = [];
    for (let n = 0; n < 5; n++) stored.push(await sut.add(detection(n)));
    expect(stored.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(sut.ack([2, 4, 99])).toEqual([2, 4]);
    expect([...sut.pending()].map((d) => d.seq)).toEqual([1, 3, 5]);
    expect(sut.unknownAcksTotal).toBe(1);
    await sut.close();
  });

  it('hands out each pending detection as its JSON, also after a reopen, and forgets it once acked', async () => {
    const { outbox: first } = await open();
    const a = await first.add(detection(1));
    expect(first.jsonOf(a.seq)).toBe(JSON.stringify(a));
    await first.close();
    const { outbox: sut } = await open();
    const [replayed] = [...sut.pending()];
    expect(sut.jsonOf(a.seq)).toBe(JSON.stringify(replayed));
    expect(JSON.parse(sut.jsonOf(a.seq)!)).toEqual(a);
    sut.ack([a.seq]);
    expect(sut.jsonOf(a.seq)).toBeUndefined();
    await sut.close();
  });

  it('replays exactly the pending detections in order after a crash with a torn last write', async () => {
    const { outbox: first } = await open();
    for (let n = 0; n < 10; n++) await first.add(detection(n));
    first.ack([1, 2, 5]);
    await first.close();
    // A crash in the middle of the next append leaves half a line.
    const file = path.join(dir, 'outbox.log');
    await fsp.appendFile(file, '{"t":"d","seq":11,"frameId":"frame-1');

    const { outbox: sut, recovery } = await open();
    expect(recovery.tornTail).toBe(true);
    expect([...sut.pending()].map((d) => d.seq)).toEqual([3, 4, 6, 7, 8, 9, 10]);
    expect([...sut.pending()].map((d) => d.frameId)).toEqual(['frame-2', 'frame-3', 'frame-5', 'frame-6', 'frame-7', 'frame-8', 'frame-9']);
    // The torn record never became durable, so its number may be issued again; nothing durable is reused.
    expect((await sut.add(detection(10))).seq).toBe(11);
    await sut.close();
    const text = await fsp.readFile(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.trim().split('\n')) expect(() => JSON.parse(line) as unknown).not.toThrow();
  });

  it('never reuses a sequence number, even after everything was acked and compacted', async () => {
    const { outbox: first } = await open();
    for (let n = 0; n < 20; n++) await first.add(detection(n));
    first.ack(Array.from({ length: 20 }, (_, i) => i + 1));
    await first.compact();
    await first.close();

    const { outbox: sut } = await open();
    expect(sut.depth).toBe(0);
    expect((await sut.add(detection(20))).seq).toBe(21);
    await sut.close();
  });

  it('keeps its sequence epoch across restarts and starts a new one when its storage is wiped', async () => {
    const { outbox: first, recovery: created } = await open();
    expect(created.newEpoch).toBe(true);
    expect(first.epoch).toMatch(/^[a-z0-9]+-[0-9a-f]{12}$/);
    await first.add(detection(0));
    await first.close();

    const { outbox: reopened, recovery } = await open();
    expect(recovery.newEpoch).toBe(false);
    expect(reopened.epoch).toBe(first.epoch);
    await reopened.close();

    // A replaced SD card: same device, empty state. Seqs restart at 1 under a new epoch.
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.mkdir(dir);
    const { outbox: wiped, recovery: fresh } = await open();
    expect(fresh.newEpoch).toBe(true);
    expect(wiped.epoch).not.toBe(first.epoch);
    expect((await wiped.add(detection(1))).seq).toBe(1);
    await wiped.close();
  });

  it('loses nothing when detections are added while a compaction runs', async () => {
    const { outbox: first } = await open();
    const adds: Array<Promise<unknown>> = [];
    for (let n = 0; n < 50; n++) {
      adds.push(first.add(detection(n)));
      if (n % 10 === 9) adds.push(first.compact());
    }
    await Promise.all(adds);
    first.ack([1, 2, 3]);
    await first.compact();
    await first.close();

    const { outbox: sut } = await open();
    expect([...sut.pending()].map((d) => d.seq)).toEqual(Array.from({ length: 47 }, (_, i) => i + 4));
    await sut.close();
  });

  it('compacts the log once most of it is acknowledged', async () => {
    const { outbox: sut } = await open();
    for (let n = 0; n < 30; n++) await sut.add(detection(n));
    const before = sut.fileBytes;
    sut.ack(Array.from({ length: 29 }, (_, i) => i + 1));
    await sut.compact();
    expect(sut.fileBytes).toBeLessThan(before / 5);
    expect([...sut.pending()].map((d) => d.seq)).toEqual([30]);
    await sut.close();
  });

  it('refuses new detections when full and takes them again once acks free space', async () => {
    const one = Buffer.byteLength(JSON.stringify({ t: 'd', seq: 1, ...detection(0) })) + 1;
    const { outbox: sut } = await Outbox.open(dir, { maxBytes: one * 3 });
    for (let n = 0; n < 3; n++) await sut.add(detection(n));
    expect(sut.full).toBe(true);
    await expect(sut.add(detection(3))).rejects.toBeInstanceOf(OutboxFullError);
    expect(sut.refusedTotal).toBe(1);
    const space = new Promise((resolve) => sut.once('space', resolve));
    sut.ack([1]);
    await space;
    expect(sut.full).toBe(false);
    expect((await sut.add(detection(3))).seq).toBe(4);
    await sut.close();
  });

  it('ignores corrupt records in the middle of the log', async () => {
    const { outbox: first } = await open();
    await first.add(detection(0));
    await first.close();
    await fsp.appendFile(path.join(dir, 'outbox.log'), 'garbage\n{"t":"d","seq":"x"}\n');
    const { outbox: sut, recovery } = await open();
    expect(recovery.corruptLines).toBe(2);
    expect([...sut.pending()].map((d) => d.seq)).toEqual([1]);
    expect((await sut.add(detection(1))).seq).toBe(2);
    await sut.close();
  });
});
