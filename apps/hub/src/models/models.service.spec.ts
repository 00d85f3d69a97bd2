import { HttpException, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { encodeTrainingRows, type TrainingRows } from '@shelfsight/contracts';
import { rowsOf, tinyArtifact, type TinyHeadInput } from '../../../../test/support/model-artifacts';
import { sha256Of, type BlobStore, type StoredBlob } from '../blobs/blob-store';
import { HubMetrics } from '../metrics/hub-metrics';
import type { RescoreTrigger } from './backlog-rescorer';
import { GateOverrideRefusedError, IncomparableModelsError } from './models.error';
import type { EvaluationSetRow, ModelsRepository, ModelVersionRow } from './models.repository';
import { ModelsService, type RegisterModelInput } from './models.service';

type Repo = Pick<
  ModelsRepository,
  | 'findVersion'
  | 'insertVersion'
  | 'addCategories'
  | 'setOverride'
  | 'evaluationSet'
  | 'evaluationSetsOf'
  | 'freezeEvaluationSet'
  | 'labelledSampleIds'
  | 'sampleEmbeddings'
  | 'fleetVersion'
  | 'newestReleasable'
>;

/** The registry's tables at their boundary: versions by name, evaluation sets frozen once. No labelled samples. */
class FakeRegistry implements Repo {
  readonly versions = new Map<string, ModelVersionRow>();
  readonly sets: EvaluationSetRow[] = [];
  readonly categories = new Set<string>();

  findVersion(version: string): Promise<ModelVersionRow | undefined> {
    return Promise.resolve(this.versions.get(version));
  }

  insertVersion(v: Parameters<ModelsRepository['insertVersion']>[0]): Promise<void> {
    this.versions.set(v.version, { ...v, registered_at: new Date(), rescore_attempts: 0, gate_override: null } as unknown as ModelVersionRow);
    return Promise.resolve();
  }

  addCategories(names: string[]): Promise<void> {
    for (const n of names) this.categories.add(n);
    return Promise.resolve();
  }

  setOverride(version: string, override: ModelVersionRow['gate_override'], gateReason: string): Promise<boolean> {
    const v = this.versions.get(version)!;
    if (v.releasable === true) return Promise.resolve(false);
    Object.assign(v, { releasable: true, gate_override: override, gate_reason: gateReason });
    return Promise.resolve(true);
  }

  evaluationSet(categorySet: string, backboneId: string): Promise<EvaluationSetRow | undefined> {
    return Promise.resolve(this.sets.find((s) => s.category_set === categorySet && s.backbone_id === backboneId));
  }

  evaluationSetsOf(backboneId: string): Promise<EvaluationSetRow[]> {
    return Promise.resolve(this.sets.filter((s) => s.backbone_id === backboneId));
  }

  freezeEvaluationSet(e: Omit<EvaluationSetRow, 'created_at'>): Promise<EvaluationSetRow> {
    const known = this.sets.find((s) => s.category_set === e.category_set && s.backbone_id === e.backbone_id);
    if (known) return Promise.resolve(known);
    const row = { ...e, created_at: new Date() };
    this.sets.push(row);
    return Promise.resolve(row);
  }

  labelledSampleIds(): Promise<Array<{ id: bigint; label: string }>> {
    return Promise.resolve([]);
  }

  sampleEmbeddings(): Promise<Array<{ id: bigint; label: string; embedding: Uint8Array }>> {
    return Promise.resolve([]);
  }

  fleetVersion(): Promise<ModelVersionRow | undefined> {
    return Promise.resolve(undefined);
  }

  newestReleasable(backboneId: string, except: string): Promise<ModelVersionRow | undefined> {
    return Promise.resolve([...this.versions.values()].reverse().find((v) => v.backbone_id === backboneId && v.version !== except && v.releasable === true));
  }
}

/** Content-addressed blobs in memory. */
class MemoryBlobs implements Pick<BlobStore, 'put' | 'get' | 'open'> {
  readonly blobs = new Map<string, Buffer>();

  put(data: Buffer): Promise<StoredBlob> {
    const sha256 = sha256Of(data);
    this.blobs.set(sha256, data);
    return Promise.resolve({ sha256, bytes: data.length } as StoredBlob);
  }

  get(sha: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.blobs.get(sha));
  }

  open(sha: string) {
    const b = this.blobs.get(sha);
    return Promise.resolve(b && { stream: Readable.from([b]), bytes: b.length });
  }
}

const LABELS = ['bread', 'milk'];
/** Reads bread from the first input, milk from the second. */
const RIGHT = [
  [1, 0],
  [0, 1],
];
/** Swaps them: wrong on every row. */
const WRONG = [
  [0, 1],
  [1, 0],
];
const head = (version: string, kernel: number[][], over: Partial<TinyHeadInput> = {}) => tinyArtifact({ version, labels: LABELS, kernel, ...over });

/** 10 rows per category; split 2 (testing) unless told, ids `image:<label><n>`. */
const rows = (split: 0 | 2 = 2, prefix = 'image:'): TrainingRows =>
  rowsOf(
    LABELS,
    LABELS.flatMap((label, l) => Array.from({ length: 10 }, (_, n) => ({ label, x: l === 0 ? [1, 0.1 * n] : [0.1 * n, 1], split, id: `${prefix}${label}${n}` }))),
  );

/** The refusal's class, status and message, as the client sees them. */
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: HttpException) => `${e.constructor.name} ${e.getStatus()} ${JSON.stringify(e.getResponse())}`,
  );

describe(ModelsService.name, () => {
  let repo: FakeRegistry;
  let blobs: MemoryBlobs;
  let metrics: HubMetrics;
  let kicks: number;
  let sut: ModelsService;
  const register = (input: Partial<RegisterModelInput> & Pick<RegisterModelInput, 'files'>) => sut.register({ source: 'upload', ...input });
  const refused = async () => Object.fromEntries([...(await metrics.registry.metrics()).matchAll(/^shelfsight_models_refused_total\{reason="([\w-]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));

  beforeAll(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  beforeEach(() => {
    repo = new FakeRegistry();
    blobs = new MemoryBlobs();
    metrics = new HubMetrics();
    kicks = 0;
    const rescorer: RescoreTrigger = { kick: () => void kicks++ };
    sut = new ModelsService(repo as unknown as ModelsRepository, rescorer, metrics, blobs as unknown as BlobStore, { gateMaxOverallDrop: 0.05, gateMaxCategoryDrop: 0.1, gateMinEvalRows: 5 });
  });

  it('refuses an artifact whose weights do not match its manifest, counting it and storing no version', async () => {
    const files = head('v1', RIGHT);
    files.weights = Buffer.from(files.weights.map((b, i) => (i === 0 ? b ^ 1 : b)));
    expect(await refusal(register({ files }))).toMatch(/^InvalidModelArtifactError 422/);
    expect(repo.versions.size).toBe(0);
    expect(await refused()).toEqual({ artifact: 1 });
  });

  it('refuses training rows of another embedding size or with labels the model lacks', async () => {
    const wide = rowsOf(LABELS, [{ label: 'milk', x: [1, 0, 0] }]);
    expect(await refusal(register({ files: head('v1', RIGHT), trainingSet: wide }))).toMatch(/embeddings are 3-d, the head takes 2/);
    const foreign = rowsOf(['juice'], [{ label: 'juice', x: [1, 0] }]);
    expect(await refusal(register({ files: head('v1', RIGHT), trainingSet: encodeTrainingRows(foreign) }))).toMatch(/labels not in the model: juice/);
    expect(await refused()).toEqual({ 'training-rows': 2 });
  });

  it('freezes the held-out testing rows of a demo’s set as evaluation rows, scores the version on them and, releasable, kicks the backlog re-score', async () => {
    const mixed: TrainingRows = rowsOf(LABELS, [...rowsToItems(rows(0, 'train:')), ...rowsToItems(rows(2))]);
    const { model, created } = await register({ files: head('v1', RIGHT), trainingSet: mixed, source: 'demo' });
    expect(created).toBe(true);
    expect(repo.sets).toEqual([expect.objectContaining({ category_set: expect.any(String), rows: 20, counts: { bread: 10, milk: 10 }, frozen_by: 'v1' })]);
    expect(model).toMatchObject({ releasable: true, metrics: expect.objectContaining({ accuracy: 1, rows: 20 }) });
    expect(kicks).toBe(1);
    expect([...repo.categories].sort()).toEqual(LABELS);
  });

  it('never lets an upload’s own rows become evaluation rows', async () => {
    await register({ files: head('v1', RIGHT), trainingSet: rows(2), source: 'upload' });
    expect(repo.sets).toEqual([]);
    expect(repo.versions.get('v1')!.releasable).toBe(false);
  });

  it('is idempotent for the same artifact under its version, and refuses another artifact under a registered version', async () => {
    const files = head('v1', RIGHT);
    await register({ files, trainingSet: rows(), source: 'demo' });
    expect((await register({ files, source: 'demo' })).created).toBe(false);
    expect(repo.versions.size).toBe(1);
    expect(await refusal(register({ files: head('v1', WRONG) }))).toMatch(/^ModelVersionConflictError 409/);
    expect(await refused()).toEqual({ 'version-conflict': 1 });
  });

  it('refuses to release a version that regresses against its parent on the same rows, and does not re-score the backlog', async () => {
    await register({ files: head('v1', RIGHT), trainingSet: rows(), source: 'demo' });
    kicks = 0;
    const { model } = await register({ files: head('v2', WRONG, { parent: 'v1' }) });
    expect(model.releasable).toBe(false);
    expect(model.gateReason).toMatch(/bread 1\.00→0\.00/);
    expect(kicks).toBe(0);
  });

  it('refuses to release a version whose evaluation rows were among its own training rows, and that cannot be overridden', async () => {
    await register({ files: head('v1', RIGHT), trainingSet: rows(), source: 'demo' });
    const { model } = await register({ files: head('v3', RIGHT), trainingSet: rows(0), source: 'job', rowsFromHubData: true });
    expect(model.releasable).toBe(false);
    expect(model.gateReason).toMatch(/20 of the 20 evaluation rows were among its training or validation rows/);
    expect(await refusal(sut.override('v3', 'ship it', 'key:ops'))).toMatch(/^GateOverrideRefusedError .*cannot be overridden/);
  });

  it('lets an operator release a version held back only by unverified categories, once, with a reason', async () => {
    await register({ files: head('v1', RIGHT), trainingSet: rows(), source: 'demo' });
    kicks = 0;
    const juice = tinyArtifact({ version: 'v4', labels: ['bread', 'juice', 'milk'], kernel: [[1, 0, 0], [0, 0, 1]], parent: 'v1' });
    const { model } = await register({ files: juice });
    expect(model).toMatchObject({ releasable: false, gate: expect.objectContaining({ overridable: true, unverified: ['juice'] }) });
    const released = await sut.override('v4', 'juice is new; watched by hand', 'key:ops');
    expect(released).toMatchObject({ releasable: true, override: { by: 'key:ops', reason: 'juice is new; watched by hand' } });
    expect(kicks).toBe(1);
    await expect(sut.override('v4', 'again', 'key:ops')).rejects.toThrow(GateOverrideRefusedError);
  });

  it('compares two versions only on one backbone and shared categories', async () => {
    await register({ files: head('v1', RIGHT), trainingSet: rows(), source: 'demo' });
    await register({ files: head('v2', WRONG, { parent: 'v1' }) });
    await register({ files: tinyArtifact({ version: 'x1', labels: LABELS, kernel: RIGHT, backboneId: 'other' }) });
    await register({ files: tinyArtifact({ version: 'j1', labels: ['juice', 'tea'], kernel: RIGHT }) });
    const c = await sut.compare('v1', 'v2');
    expect(c.overall).toEqual({ a: 1, b: 0, delta: -1 });
    expect(c.evaluationRows).toBe(20);
    await expect(sut.compare('v1', 'x1')).rejects.toThrow(IncomparableModelsError);
    await expect(sut.compare('v1', 'j1')).rejects.toThrow(/share no category/);
  });

  it('takes an operator’s evaluation rows as testing rows of the backbone, and refuses unreadable or empty ones', async () => {
    const dto = await sut.addEvaluationRows(encodeTrainingRows(rows(0)), 'tiny-backbone', 'key:ops');
    expect(dto).toMatchObject({ backbone: 'tiny-backbone', dim: 2, rows: 20, counts: { bread: 10, milk: 10 }, frozenBy: 'operator:key:ops' });
    const stored = repo.sets[0]!;
    expect(stored.category_set).toBe(`rows:${stored.blob_sha256}`);
    expect(await refusal(sut.addEvaluationRows(Buffer.from('not rows'), 'tiny-backbone', 'key:ops'))).toMatch(/^InvalidModelArtifactError 422 .*evaluation rows/);
    expect(await refusal(sut.addEvaluationRows(encodeTrainingRows(rowsOf(LABELS, [])), 'tiny-backbone', 'key:ops'))).toMatch(/no rows/);
  });
});

/** The items of rows (to merge two sets of rows). */
function rowsToItems(r: TrainingRows): Array<{ label: string; x: number[]; split: 0 | 2; id: string }> {
  return [...r.label].map((l, i) => ({ label: r.labels[l]!, x: [...r.x.subarray(i * r.dim, (i + 1) * r.dim)], split: r.split[i] as 0 | 2, id: r.ids![i]! }));
}
