import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTrainingRows, unpackArtifact } from '@shelfsight/contracts';
import { applyMigrations, createPrismaClient } from '@shelfsight/db';
import type { PrismaClient } from '@shelfsight/db';
import { BacklogRescorer, createModelRegistry, FileBlobStore, HubMetrics, ModelsRepository, rescoreBackoffMs, type BlobStore, type RescorePolicy, type ScoredRow } from '@shelfsight/hub';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases';
import { rowsOf, tinyArchive } from './support/model-artifacts';
import { hasExternalPostgres } from './support/services';

const variants: Array<{ db: DatabaseKind; available: () => boolean }> = [
  { db: 'pglite', available: () => true },
  { db: 'postgres', available: hasExternalPostgres },
];

/** A repository whose score writes fail on chosen calls (a database error mid-run), recording which ids each call wrote. */
class FlakyScoresRepository extends ModelsRepository {
  calls = 0;
  failOn = new Set<number>();
  written: bigint[][] = [];

  override async updateScores(version: string, ids: bigint[], scores: ScoredRow[]): Promise<number> {
    this.calls += 1;
    if (this.failOn.has(this.calls)) throw new Error(`connection reset (call ${this.calls})`);
    this.written.push(ids);
    return super.updateScores(version, ids, scores);
  }
}

const POLICY: RescorePolicy = { staleMs: 60_000, pollMs: 60_000, maxAttempts: 3, retryBaseMs: 400, retryMaxMs: 5_000 };

interface RescoreState {
  rescore_state: string;
  rescored_samples: number | null;
  rescore_after_id: bigint | null;
  rescore_attempts: number;
  rescore_error: string | null;
  retry_in_s: number | null;
}

describe(BacklogRescorer.name, () => {
  it('backs off exponentially up to a cap', () => {
    expect([1, 2, 3, 4, 10].map((n) => rescoreBackoffMs(POLICY, n))).toEqual([400, 800, 1600, 3200, 5000]);
  });

  for (const variant of variants) {
    const d = variant.available() ? describe : describe.skip;
    d(`on ${variant.db}`, () => {
      let db: TestDatabase;
      let prisma: PrismaClient;
      let blobs: BlobStore;
      let repo: FlakyScoresRepository;
      let sut: BacklogRescorer;
      let backbone = '';

      const state = async (version: string): Promise<RescoreState> =>
        (
          await prisma.$queryRaw<RescoreState[]>`
            SELECT rescore_state, rescored_samples, rescore_after_id, rescore_attempts, rescore_error,
              EXTRACT(EPOCH FROM rescore_retry_at - now())::float8 AS retry_in_s
            FROM model_versions WHERE version = ${version}`
        )[0] as RescoreState;

      const pendingSamples = async (n: number): Promise<bigint[]> => {
        const ids: bigint[] = [];
        for (let i = 0; i < n; i++) {
          const rows = await prisma.$queryRaw<Array<{ id: bigint }>>`
            INSERT INTO samples (device_id, sample_id, reason, frame_id, site, zone, location, captured_at, predicted_category, predicted_confidence,
              predicted_top_k, model_version, backbone_id, embedding, embedding_dim, thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
              scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version)
            VALUES ('rescore-dev', ${`${backbone}-s${i}`}, 'low_confidence', ${`f${i}`}, 's', 'A', 'A-01-1-A', now(), 'apples', 0.5, '[]'::jsonb, 'device-v0', ${backbone},
              ${Buffer.from(Float32Array.from([1, i / n]).buffer)}, 2, ${'0'.repeat(64)}, 1, 1, 1, 'apples', 0.5, 0.1, 0.69, '[]'::jsonb, 'device-v0')
            RETURNING id`;
          ids.push((rows[0] as { id: bigint }).id);
        }
        return ids;
      };

      /** Evaluation rows of the backbone (only a releasable version re-scores the backlog, and the gate needs rows to release one). */
      const evaluationRows = rowsOf(['apples', 'milk'], [...Array.from({ length: 10 }, () => ({ label: 'apples', x: [1, 0] })), ...Array.from({ length: 10 }, () => ({ label: 'milk', x: [0, 1] }))]);
      const register = async (version: string): Promise<void> => {
        const { trainingRows: _none, ...files } = await unpackArtifact(await tinyArchive({ version, labels: ['apples', 'milk'], kernel: [[6, 0], [0, 6]], backboneId: backbone }));
        const registry = createModelRegistry({ prisma, blobs, gate: { gateMaxOverallDrop: 0.02, gateMaxCategoryDrop: 0.05, gateMinEvalRows: 10 } });
        if ((await new ModelsRepository(prisma).evaluationSetsOf(backbone)).length === 0) await registry.addEvaluationRows(encodeTrainingRows(evaluationRows), backbone, 'test');
        const { model } = await registry.register({ files, source: 'job', registeredBy: 'job:test' });
        if (model.releasable !== true) throw new Error(`${version} is not releasable: ${model.gateReason}`);
      };

      beforeAll(async () => {
        db = await createTestDatabase(variant.db);
        await applyMigrations(db.url);
        prisma = createPrismaClient(db.url, variant.db === 'pglite' ? 1 : 3); // PGlite: one connection, as the hub uses it
        blobs = new FileBlobStore(join(mkdtempSync(join(tmpdir(), 'shelfsight-rescore-')), 'blobs'));
      }, 120_000);

      beforeEach(() => {
        backbone = `bb-${Math.random().toString(36).slice(2, 8)}`;
        repo = new FlakyScoresRepository(prisma);
        sut = new BacklogRescorer(repo, new HubMetrics(), blobs, { rescoreBatchRows: 4 }, POLICY);
      });

      afterEach(async () => {
        await sut.onModuleDestroy();
      });

      afterAll(async () => {
        await prisma?.$disconnect();
        await db?.drop();
      });

      it('retries a run that hit an error with backoff and resumes after the last sample it scored', async () => {
        const ids = await pendingSamples(10);
        const version = `v-flaky-${backbone}`;
        await register(version);
        repo.failOn.add(2); // the second page's write fails
        sut.kick();
        await sut.idle();
        const failed = await state(version);
        expect(failed).toMatchObject({ rescore_state: 'queued', rescored_samples: 4, rescore_after_id: ids[3], rescore_attempts: 1, rescore_error: 'connection reset (call 2)' });
        // Due after the backoff, judged on the database's clock.
        expect(failed.retry_in_s).toBeGreaterThan(0);
        expect(failed.retry_in_s).toBeLessThanOrEqual(POLICY.retryBaseMs / 1000);
        sut.kick();
        await sut.idle();
        expect((await state(version)).rescore_state).toBe('queued'); // not due yet: nothing claimed
        await new Promise((r) => setTimeout(r, POLICY.retryBaseMs + 200));
        sut.kick();
        await sut.idle();
        expect(await state(version)).toMatchObject({ rescore_state: 'done', rescored_samples: 10, rescore_attempts: 1 });
        // The retry went on after the fourth sample: the first page was not scored twice.
        expect(repo.written.flat()).toEqual(ids);
        const scored = await prisma.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM samples WHERE backbone_id = ${backbone} AND scored_model_version = ${version}`;
        expect(scored[0]?.n).toBe(10);
      });

      it('gives up after maxAttempts failures and says why', async () => {
        await pendingSamples(3);
        const version = `v-broken-${backbone}`;
        await register(version);
        const sha = (await prisma.$queryRaw<Array<{ artifact_sha256: string }>>`SELECT artifact_sha256 FROM model_versions WHERE version = ${version}`)[0]!.artifact_sha256;
        await blobs.delete(sha);
        for (let attempt = 1; attempt <= POLICY.maxAttempts; attempt++) {
          await prisma.$executeRaw`UPDATE model_versions SET rescore_retry_at = now() WHERE version = ${version} AND rescore_state = 'queued'`;
          sut.kick();
          await sut.idle();
        }
        const end = await state(version);
        expect(end).toMatchObject({ rescore_state: 'failed', rescore_attempts: POLICY.maxAttempts, retry_in_s: null });
        expect(end.rescore_error).toMatch(/artifact blob .* is missing/);
      });

      it('claims a running re-score again only when it stopped beating for staleMs on the database clock', async () => {
        await pendingSamples(2);
        const version = `v-stale-${backbone}`;
        await register(version);
        // Another process holds it: running, beating just now (database time).
        await prisma.$executeRaw`UPDATE model_versions SET rescore_state = 'running', rescored_at = now() WHERE version = ${version}`;
        sut.kick();
        await sut.idle();
        expect((await state(version)).rescore_state).toBe('running');
        await prisma.$executeRaw`UPDATE model_versions SET rescored_at = now() - make_interval(secs => ${POLICY.staleMs / 1000 + 1}::float8) WHERE version = ${version}`;
        sut.kick();
        await sut.idle();
        expect(await state(version)).toMatchObject({ rescore_state: 'done', rescored_samples: 2 });
      });
    });
  }
});
