import { silentLogger } from '@shelfsight/common';
import { checkSampleEmbeddings, cosineDistance, firstChecks, mismatchMessage, type CheckedSample, type ThumbnailEmbedder } from './embedding-check';

const bytes = (v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

describe(checkSampleEmbeddings.name, () => {
  const settings = { percent: 50, allBelow: 4, maxCosineDistance: 0.1 };
  /** Thumbnails whose bytes are the "true" embedding as JSON; the fake backbone reads them back. */
  const truth = new Map<string, number[]>();
  const thumbnails = async (ids: bigint[]) => new Map(ids.filter((id) => truth.has(String(id))).map((id) => [String(id), Buffer.from(JSON.stringify(truth.get(String(id))))] as const));
  const embedded: string[] = [];
  const embed: ThumbnailEmbedder = async (paths) => {
    const { readFile } = await import('node:fs/promises');
    embedded.push(...paths);
    return new Map(await Promise.all(paths.map(async (p) => [p, Float32Array.from(JSON.parse(await readFile(p, 'utf8')) as number[])] as const)));
  };
  const sample = (id: number, device: string, sent: number[], frame: number[] | undefined): CheckedSample => {
    if (frame) truth.set(String(id), frame);
    return { id: BigInt(id), device_id: device, embedding: bytes(sent) };
  };

  beforeEach(() => {
    truth.clear();
    embedded.length = 0;
  });

  it('leaves out samples whose embedding does not match their thumbnail, and names the device and count', async () => {
    const samples = [
      sample(1, 'honest', [1, 0, 0], [0.98, 0.05, 0]),
      sample(2, 'honest', [0, 1, 0], [0, 1, 0.02]),
      sample(3, 'poisoner', [1, 0, 0], [0, 0, 1]),
      sample(4, 'poisoner', [0, 1, 0], [0, 1, 0]),
      sample(5, 'poisoner', [0, 0, 1], [1, 0, 0]),
      sample(6, 'no-thumbnails', [0, 0, 1], undefined),
    ];
    const sut = await checkSampleEmbeddings({ samples, dim: 3, settings, thumbnails, embed, logger: silentLogger });
    expect([...sut.mismatched.keys()].sort()).toEqual(['3', '5']);
    expect(sut.mismatched.get('3')).toBeCloseTo(1, 6);
    const poisoner = sut.devices.find((d) => d.device === 'poisoner');
    expect(poisoner).toMatchObject({ samples: 3, checked: 3, mismatched: 2, message: 'device poisoner sent 2 embeddings that do not match their frames' });
    expect(sut.devices.find((d) => d.device === 'honest')).toMatchObject({ checked: 2, mismatched: 0 });
    expect(sut.devices.find((d) => d.device === 'honest')?.message).toBeUndefined();
    expect(sut.devices.find((d) => d.device === 'no-thumbnails')).toMatchObject({ checked: 0, unverifiable: 1, mismatched: 0 });
    expect(sut.checked).toBe(5);
  });

  it('checks a share of a large device, then all of it once one sample is caught', async () => {
    // 20 samples of one device, one poisoned: whichever share is drawn first, the device ends fully checked only if caught.
    const samples = Array.from({ length: 20 }, (_, i) => sample(100 + i, 'big', [1, 0], i === 7 ? [0, 1] : [1, 0]));
    const saltWhere = (caught: boolean) => Array.from({ length: 50 }, (_, i) => `salt-${i}`).find((x) => firstChecks(samples, settings, x).has('107') === caught)!;
    const first = firstChecks(samples, settings, saltWhere(false));
    expect(first.size).toBeGreaterThan(3);
    expect(first.size).toBeLessThan(17);
    const missed = await checkSampleEmbeddings({ samples, dim: 2, settings, thumbnails, embed, logger: silentLogger, salt: saltWhere(false) });
    expect(missed.devices[0]).toMatchObject({ checked: first.size, mismatched: 0 });
    const caught = await checkSampleEmbeddings({ samples, dim: 2, settings, thumbnails, embed, logger: silentLogger, salt: saltWhere(true) });
    expect(caught.devices[0]).toMatchObject({ checked: 20, mismatched: 1, message: 'device big sent 1 embedding that does not match its frame' });
    expect([...caught.mismatched.keys()]).toEqual(['107']);
    // Another salt draws another share (a device cannot know which samples are checked).
    expect([...firstChecks(samples, settings, saltWhere(true))].sort()).not.toEqual([...first].sort());
  });
});

describe(cosineDistance.name, () => {
  it('is 0 for the same direction, 1 for orthogonal, 2 for opposite, 1 against zeros', () => {
    expect(cosineDistance([1, 2, 3], [2, 4, 6])).toBeCloseTo(0, 12);
    expect(cosineDistance([1, 0], [0, 1])).toBeCloseTo(1, 12);
    expect(cosineDistance([1, 0], [-1, 0])).toBeCloseTo(2, 12);
    expect(cosineDistance([0, 0], [1, 0])).toBe(1);
  });
});

describe(mismatchMessage.name, () => {
  it('reads as the operator sees it', () => {
    expect(mismatchMessage('robot-7', 37)).toBe('device robot-7 sent 37 embeddings that do not match their frames');
  });
});
