import { Logger } from '@nestjs/common';
import type { BlobStore } from '../blobs/blob-store';
import { HubMetrics } from '../metrics/hub-metrics';
import { SamplePurgeService } from './sample-purge.service';
import type { SamplesRepository } from './samples.repository';

interface StoredSample {
  id: bigint;
  backbone_id: string;
  thumbnail_sha256: string;
  expiresAt: Date | null;
}

/** Samples with their expiry (null: labelled, kept); deletes the expired ones `chunk` at a time. */
class FakeSamples implements Pick<SamplesRepository, 'deleteExpired' | 'unreferencedThumbnails'> {
  samples: StoredSample[] = [];
  failOnDelete = false;

  deleteExpired(now: Date, chunk: number): Promise<Array<{ id: bigint; backbone_id: string; thumbnail_sha256: string }>> {
    if (this.failOnDelete) return Promise.reject(new Error('database is down'));
    const expired = this.samples.filter((s) => s.expiresAt !== null && s.expiresAt <= now).slice(0, chunk);
    this.samples = this.samples.filter((s) => !expired.includes(s));
    return Promise.resolve(expired.map(({ id, backbone_id, thumbnail_sha256 }) => ({ id, backbone_id, thumbnail_sha256 })));
  }

  unreferencedThumbnails(shas: string[]): Promise<string[]> {
    return Promise.resolve(shas.filter((sha) => !this.samples.some((s) => s.thumbnail_sha256 === sha)));
  }
}

describe(SamplePurgeService.name, () => {
  const now = new Date('2026-12-08T00:00:00Z');
  const past = new Date('2026-12-01T00:00:00Z');
  const later = new Date('2026-12-09T00:00:00Z');
  let repo: FakeSamples;
  let deletedBlobs: string[];
  let metrics: HubMetrics;
  let sut: SamplePurgeService;

  beforeEach(() => {
    repo = new FakeSamples();
    deletedBlobs = [];
    metrics = new HubMetrics();
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const blobs: Pick<BlobStore, 'delete'> = { delete: (sha) => Promise.resolve(void deletedBlobs.push(sha)) };
    sut = new SamplePurgeService(repo as unknown as SamplesRepository, metrics, blobs as BlobStore);
  });

  it('deletes expired samples and only the thumbnails no remaining sample refers to; keeps labelled and unexpired ones', async () => {
    repo.samples = [
      { id: 1n, backbone_id: 'b', thumbnail_sha256: 'aa', expiresAt: past },
      { id: 2n, backbone_id: 'b', thumbnail_sha256: 'bb', expiresAt: past },
      { id: 3n, backbone_id: 'b', thumbnail_sha256: 'bb', expiresAt: null }, // labelled: shares bb
      { id: 4n, backbone_id: 'b', thumbnail_sha256: 'cc', expiresAt: later },
    ];
    expect(await sut.runOnce(now)).toEqual({ samples: 2, blobs: 1 });
    expect(deletedBlobs).toEqual(['aa']);
    expect(repo.samples.map((s) => s.id)).toEqual([3n, 4n]);
    expect(await metrics.registry.metrics()).toMatch(/^shelfsight_samples_purged_total 2$/m);
  });

  it('goes on chunk after chunk while chunks come back full', async () => {
    repo.samples = Array.from({ length: 4500 }, (_, i) => ({ id: BigInt(i), backbone_id: 'b', thumbnail_sha256: `s${i}`, expiresAt: past }));
    expect(await sut.runOnce(now)).toEqual({ samples: 4500, blobs: 4500 });
    expect(repo.samples).toEqual([]);
  });

  it('reports nothing deleted and never throws when the database fails', async () => {
    repo.samples = [{ id: 1n, backbone_id: 'b', thumbnail_sha256: 'aa', expiresAt: past }];
    repo.failOnDelete = true;
    await expect(sut.runOnce(now)).resolves.toEqual({ samples: 0, blobs: 0 });
    expect(deletedBlobs).toEqual([]);
  });
});
