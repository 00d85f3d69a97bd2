import type { Frame } from '../sources/frame';
import { FrameQueue } from './frame-queue';

const frame = (id: string, location: string): Frame => ({
  frameId: id,
  site: 's',
  location,
  capturedAt: '2026-01-01T00:00:00.000Z',
  image: Buffer.alloc(0),
  source: 'test',
});

describe(FrameQueue.name, () => {
  it('when full, drops the queued frame of the same location first, else the oldest', async () => {
    const sut = new FrameQueue(3);
    sut.push(frame('a1', 'A-01-1-A'));
    sut.push(frame('b1', 'B-01-1-A'));
    sut.push(frame('c1', 'C-01-1-A'));
    expect(sut.push(frame('b2', 'B-01-1-A'))).toMatchObject({ dropped: { frameId: 'b1' }, reason: 'superseded' });
    expect(sut.push(frame('d1', 'D-01-1-A'))).toMatchObject({ dropped: { frameId: 'a1' }, reason: 'queue_full' });
    expect(sut.dropped).toEqual({ superseded: 1, queue_full: 1 });
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push((await sut.take())?.frameId ?? '');
    expect(order).toEqual(['c1', 'b2', 'd1']);
  });

  it('hands a frame straight to a waiting consumer and ends takers on close', async () => {
    const sut = new FrameQueue(1);
    const waiting = sut.take();
    sut.push(frame('x', 'A-01-1-A'));
    expect((await waiting)?.frameId).toBe('x');
    const ended = sut.take();
    sut.push(frame('y', 'A-01-1-A'));
    expect((await ended)?.frameId).toBe('y');
    sut.push(frame('z', 'A-01-1-A'));
    expect(sut.close().map((f) => f.frameId)).toEqual(['z']);
    expect(await sut.take()).toBeUndefined();
  });
});
