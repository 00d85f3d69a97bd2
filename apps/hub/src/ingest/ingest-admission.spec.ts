import { CommittedRing, frameHash, IngestAdmission, type AdmissionOptions } from './ingest-admission';

const batch = (from: number, to: number, frame = 'f') => Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, frameId: `${frame}${from + i}` }));
const seqs = (from: number, to: number) => batch(from, to).map((d) => d.seq);
const idle = { rows: 0, bytes: 0 };

describe(IngestAdmission.name, () => {
  let now: number;
  let sut: IngestAdmission;
  const options: AdmissionOptions = { maxPendingRows: 10_000, maxPendingBytes: 1_000_000, retryAfterMs: 1000, minTargetRows: 1000, minWindow: 5 };

  beforeEach(() => {
    now = 1_000_000;
    sut = new IngestAdmission(options, () => now);
  });

  it('takes new detections and marks them pending: a retransmission while they await commit is dropped', () => {
    expect(sut.admit('d1', 'e1', batch(1, 10), 1000, idle)).toMatchObject({ fresh: batch(1, 10), held: [], pending: [], deferred: [] });
    expect(sut.admit('d1', 'e1', batch(6, 15), 1000, { rows: 10, bytes: 1000 })).toMatchObject({ fresh: batch(11, 15), pending: seqs(6, 10), held: [] });
  });

  it('once committed, a retransmission is held: acknowledged again without SQL', () => {
    sut.admit('d1', 'e1', batch(1, 10), 1000, idle);
    sut.committed('d1', 'e1', batch(1, 10));
    expect(sut.admit('d1', 'e1', batch(1, 12), 1200, idle)).toMatchObject({ fresh: batch(11, 12), held: seqs(1, 10), pending: [] });
  });

  it('a seq sent again with another frame is no repeat: it goes to SQL, which counts the conflict', () => {
    sut.admit('d1', 'e1', batch(1, 3), 300, idle);
    expect(sut.admit('d1', 'e1', batch(3, 3, 'other'), 100, idle).fresh).toEqual(batch(3, 3, 'other'));
    sut.committed('d1', 'e1', batch(1, 3));
    expect(sut.admit('d1', 'e1', batch(2, 2, 'other'), 100, idle)).toMatchObject({ fresh: batch(2, 2, 'other'), held: [] });
  });

  it('keeps devices and epochs apart: the same seqs of another epoch (storage replaced) are new', () => {
    sut.admit('d1', 'e1', batch(1, 10), 1000, idle);
    sut.committed('d1', 'e1', batch(1, 10));
    expect(sut.admit('d1', 'e2', batch(1, 10), 1000, idle).fresh).toHaveLength(10);
    expect(sut.admit('d2', 'e1', batch(1, 10), 1000, idle).fresh).toHaveLength(10);
  });

  it('defers new detections whole when the writer would pass its rows or its bytes, with a retry-after; retransmissions are still sorted out', () => {
    sut.admit('d1', 'e1', batch(1, 5), 500, idle);
    sut.committed('d1', 'e1', batch(1, 5));
    const byRows = sut.admit('d1', 'e1', batch(1, 20), 2000, { rows: 9_990, bytes: 1000 });
    expect(byRows).toMatchObject({ fresh: [], held: seqs(1, 5), deferred: seqs(6, 20), retryAfterMs: 1000 });
    const byBytes = sut.admit('d2', 'e1', batch(1, 20), 2000, { rows: 10, bytes: 999_000 });
    expect(byBytes).toMatchObject({ fresh: [], deferred: seqs(1, 20) });
    // Deferred seqs were never marked pending: sent again later, they are taken.
    expect(sut.admit('d2', 'e1', batch(1, 20), 2000, idle).fresh).toHaveLength(20);
  });

  it('released detections (not committed) are new again', () => {
    sut.admit('d1', 'e1', batch(1, 10), 1000, idle);
    sut.released('d1', 'e1', seqs(1, 10));
    expect(sut.admit('d1', 'e1', batch(1, 10), 1000, idle).fresh).toHaveLength(10);
  });

  it("grants each sending device its share of the target queue, the measured commit rate's worth, shrunk as the queue outgrows it", () => {
    for (let d = 1; d <= 100; d++) sut.admit(`d${d}`, 'e', batch(1, 1), 100, idle);
    // Cold: the target is minTargetRows, 1000 among 100 devices.
    expect(sut.window(idle)).toBe(10);
    // 5,000 committed per second for 5 s: the target is one second of it.
    for (let s = 0; s < 5; s++) {
      now += 1000;
      sut.committed('x', 'e', batch(1, 5000));
      for (let d = 1; d <= 100; d++) sut.admit(`d${d}`, 'e', batch(s + 2, s + 2), 100, idle);
    }
    expect(sut.commitRate()).toBe(5000);
    expect(sut.window(idle)).toBe(50);
    // A queue twice the target halves the windows; bytes count as rows do.
    expect(sut.window({ rows: 10_000, bytes: 0 })).toBe(25);
    expect(sut.window({ rows: 0, bytes: 1_000_000 })).toBe(25);
    // Never below the floor.
    expect(sut.window({ rows: 1_000_000, bytes: 0 })).toBe(5);
  });

  it('counts only devices that sent lately', () => {
    sut.admit('d1', 'e', batch(1, 1), 100, idle);
    now += 5_000;
    sut.admit('d2', 'e', batch(1, 1), 100, idle);
    expect(sut.activeDevices()).toBe(2);
    now += 6_000;
    expect(sut.activeDevices()).toBe(1);
  });

  it('forgets the least recently seen devices past maxDevices, never one with detections pending', () => {
    const small = new IngestAdmission({ ...options, maxDevices: 2 }, () => now);
    small.admit('d1', 'e', batch(1, 1), 100, idle); // pending
    small.admit('d2', 'e', batch(1, 1), 100, idle);
    small.committed('d2', 'e', batch(1, 1));
    small.admit('d3', 'e', batch(1, 1), 100, idle);
    small.committed('d3', 'e', batch(1, 1));
    expect(small.admit('d1', 'e', batch(1, 1), 100, idle).pending).toEqual([1]);
    expect(small.admit('d2', 'e', batch(1, 1), 100, idle).held).toEqual([]);
  });
});

describe(CommittedRing.name, () => {
  it('knows the recent seqs with their frames, and forgets a seq once a newer one takes its slot', () => {
    const sut = new CommittedRing();
    for (let seq = 1; seq <= 600; seq++) sut.add(seq, frameHash(`f${seq}`));
    expect(sut.has(600, frameHash('f600'))).toBe(true);
    expect(sut.has(89, frameHash('f89'))).toBe(true);
    expect(sut.has(88, frameHash('f88'))).toBe(false); // slot 88 now holds 600
    expect(sut.has(600, frameHash('other'))).toBe(false);
    sut.add(88, frameHash('f88')); // an older seq never evicts a newer one
    expect(sut.has(600, frameHash('f600'))).toBe(true);
  });
});
