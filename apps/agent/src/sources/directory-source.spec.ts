import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame, FrameSink } from './frame';
import { DirectorySource } from './directory-source';
import { ProcessedJournal } from './processed-journal';
import { locationFromFileName } from './frame';
import { waitUntil } from '../testing/fake-hub';
import { writeFrames } from '../testing/frames';

/** A sink that settles every frame at once, like a pipeline with an instant classifier. */
function instantSink(): FrameSink & { frames: Frame[]; rejected: string[] } {
  const frames: Frame[] = [];
  const rejected: string[] = [];
  return {
    frames,
    rejected,
    hasRoom: () => true,
    offer: (f) => {
      frames.push(f);
      void f.settle?.('ok');
    },
    reject: (_source, reason) => rejected.push(reason),
  };
}

describe(DirectorySource.name, () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'dirsrc-'));
  });
  afterEach(async () => {
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  const run = async (expected: number) => {
    const journal = await ProcessedJournal.open(path.join(tmp, 'state', 'processed.log'));
    const sut = new DirectorySource({ dir: path.join(tmp, 'frames'), site: 's', pollMs: 20, settleMs: 0, journal, journalSlack: 5 });
    const sink = instantSink();
    sut.start(sink);
    await waitUntil(() => sink.frames.length >= expected && sut.idle(), 10_000, `${expected} frames`);
    await sut.stop();
    await journal.close();
    return { sink, journal };
  };

  it('reads the location from a file-name prefix', () => {
    expect(locationFromFileName('A-03-2-B_0001.jpg')).toBe('A-03-2-B');
    expect(locationFromFileName('A-03-2-B.jpg')).toBe('A-03-2-B');
    expect(locationFromFileName('A-03-2-B-001.jpg')).toBe('A-03-2-B');
    expect(locationFromFileName('A-03-2-B1234.jpg')).toBeUndefined();
    expect(locationFromFileName('frame-001.jpg')).toBeUndefined();
  });

  it('offers each file once, across restarts, and a replaced file again', async () => {
    const frames = path.join(tmp, 'frames');
    await writeFrames(frames, 5);
    expect((await run(5)).sink.frames).toHaveLength(5);
    expect((await run(0)).sink.frames).toHaveLength(0);
    // Same name, new content: a new frame.
    const [first] = (await fsp.readdir(frames)).sort();
    await fsp.writeFile(path.join(frames, first as string), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9, 9, 9]));
    await fsp.utimes(path.join(frames, first as string), new Date(0), new Date(0));
    expect((await run(1)).sink.frames.map((f) => f.location)).toEqual([first?.slice(0, 8)]);
  });

  it('deletes processed files (image and sidecar) when asked to', async () => {
    const frames = path.join(tmp, 'frames');
    await writeFrames(frames, 3);
    await fsp.writeFile(path.join(frames, 'cam.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1]));
    await fsp.writeFile(path.join(frames, 'cam.json'), JSON.stringify({ location: 'B-01-1-A' }));
    await fsp.writeFile(path.join(frames, 'notes.txt'), 'not a frame');
    const journal = await ProcessedJournal.open(path.join(tmp, 'state', 'processed.log'));
    const sut = new DirectorySource({ dir: frames, site: 's', pollMs: 20, settleMs: 0, journal, deleteProcessed: true });
    const sink = instantSink();
    sut.start(sink);
    await waitUntil(async () => (await fsp.readdir(frames)).length === 1, 10_000, 'processed files deleted');
    await sut.stop();
    await journal.close();
    expect(sink.frames).toHaveLength(4);
    expect(await fsp.readdir(frames)).toEqual(['notes.txt']);
  });

  it('compacts its journal once most files are gone', async () => {
    const frames = path.join(tmp, 'frames');
    await writeFrames(frames, 40);
    await run(40);
    for (const name of (await fsp.readdir(frames)).slice(10)) await fsp.rm(path.join(frames, name));
    await run(0);
    const journal = await ProcessedJournal.open(path.join(tmp, 'state', 'processed.log'));
    expect(journal.size).toBe(10);
    await journal.close();
    expect((await run(0)).sink.frames).toHaveLength(0);
  });
});
