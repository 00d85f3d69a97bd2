/**
 * `npm run test:cluster`: a ShelfSight cluster under kill -9 (issue 20, part 5).
 *
 * Three `shelf hub` replicas on one scratch PostgreSQL database, Mosquitto (an MQTT 5
 * shared subscription splits the device traffic between the replicas), the
 * S3-compatible blob store (s3rver from npm; BLOB_STORE=s3), two `shelf worker` processes
 * (DATABASE_URL and the bucket only), real `shelf agent` processes classifying real grocery
 * photos with a head on the reference backbone, and simulated devices (`shelf sim`) for
 * volume. While detections stream, an operator working through random replicas labels the
 * agents' samples, starts a retraining job and rolls the version it registers out to the
 * agents in two stages. Meanwhile a chaos loop kill -9s a random hub replica every few
 * seconds (at least 5 times) and restarts it, and the worker running the job is killed
 * once (the job ends interrupted; the operator retries it, and the retry runs on the
 * other worker). One replica carries an SSE client (the console's `GET /events`) and is
 * never killed; the operator's actions go through the others. Last, with chaos held, an
 * events probe: a rollout to a provisioned device that never connects is created, paused,
 * resumed and aborted through the other replicas; nothing else touches it, so its events
 * can reach the observer only across replicas (LISTEN/NOTIFY).
 *
 * The broker is a Mosquitto of the run's own (the machine's binary, on a free port): on a
 * shared one, another hub (another test, a teammate's run) subscribes to the same device
 * topics and acknowledges detections it stored in its own database, which would hide a loss.
 *
 * At the end: every detection the fleet's outboxes handed out stored exactly once; every
 * sample the agents sent stored once, its thumbnail readable (same bytes) from every
 * replica; the job finished once (one done attempt, one version registered by it); the
 * rollout completed with every agent on the new version; the observer saw the events of
 * the operator's actions and each of the probe's within 15 s. `samples_queued_at_kills`
 * says how many samples the killed replicas held in memory for their writer when killed. Progress on stderr; the last stdout line is one JSON object.
 * Exit code 1 on any failure.
 *
 * CLUSTER_AGENTS (3), CLUSTER_SIM_DEVICES (20), CLUSTER_SIM_RATE (frames/s each, 4),
 * CLUSTER_SEED, CLUSTER_LOG_DIR (hub, worker and agent logs kept there).
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { frameIdOf, Outbox } from '@shelfsight/agent';
import { silentLogger } from '@shelfsight/common';
import { decodeTrainingRows, LABELS_FILE, MANIFEST_FILE, packArtifact, TRAINING_ROWS_FILE, WEIGHTS_FILE } from '@shelfsight/contracts';
import { TRAIN_DEFAULTS, trainModel } from '@shelfsight/vision';
import { createScratchDatabase, freePort, metricSum, spawnShelf, waitForHttp, type ScratchDatabase, type ShelfProcess } from '@shelfsight/cli';
import { postEvaluationRows } from '../support/model-artifacts';
import { startPrivateMosquitto, type PrivateMosquitto } from '../support/mosquitto';
import { releaseKeysFixture } from '../support/release-keys';
import { startS3Server, type TestS3Server } from '../support/s3-server';
import { EXTERNAL_POSTGRES_URL } from '../support/services';
import { GROCERY_DIR, hasShared, REFERENCE_BACKBONE } from '../support/workspace-data';
import { SseObserver } from './sse';

const REPLICAS = 3;
const WORKERS = 2;
const MIN_HUB_KILLS = 5;
const AGENTS = Number(process.env.CLUSTER_AGENTS ?? 3);
const SIM_DEVICES = Number(process.env.CLUSTER_SIM_DEVICES ?? 20);
const SIM_RATE = Number(process.env.CLUSTER_SIM_RATE ?? 4);
const SEED = Number(process.env.CLUSTER_SEED ?? Date.now() % 100_000);
/** Samples (of both categories) the operator waits for before labelling. */
const SAMPLES_TO_LABEL = 12;
const SITE = 'cluster';
const LABELS = ['bananas', 'milk'];
const PHOTOS: Record<string, string> = { bananas: 'train/Fruit/Banana', milk: 'train/Packages/Milk' };
/** The replica the SSE observer listens on: never killed; the operator acts through the others. */
const OBSERVER = 0;

const t0 = Date.now();
const log = (m: string) => process.stderr.write(`[cluster +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let rngState = SEED;
function random(): number {
  rngState = (rngState * 1103515245 + 12345) % 2147483648;
  return rngState / 2147483648;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

interface Replica {
  index: number;
  port: number;
  url: string;
  dataDir: string;
  proc?: ShelfProcess;
  up: boolean;
  starts: number;
}

interface Worker {
  id: string;
  proc?: ShelfProcess;
}

interface Job {
  id: number;
  rootId: number;
  attempt: number;
  status: string;
  phase: string;
  error: string | null;
  workerId: string | null;
  resultVersion: string | null;
}

interface Rollout {
  id: string;
  state: string;
  haltReason: string | null;
  stages: Array<{ index: number; state: string; devices: number }>;
  devices?: Array<{ deviceId: string; stage: number; state: string; activeVersion: string | null }>;
}

const photosOf = (dir: string): string[] =>
  readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => join(dir, f));

async function main(): Promise<{ ok: boolean; result: Record<string, unknown> }> {
  if (!hasShared()) throw new Error(`workspace data missing (${GROCERY_DIR}, ${REFERENCE_BACKBONE})`);
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-cluster-'));
  const logDir = process.env.CLUSTER_LOG_DIR;
  if (logDir) mkdirSync(logDir, { recursive: true });
  const logTo = (name: string) => (logDir ? (chunk: string) => appendFileSync(join(logDir, `${name}.log`), chunk) : undefined);
  const cleanups: Array<() => Promise<unknown>> = [];
  const failures: string[] = [];
  try {
    // ---------------------------------------------------------------- services
    const scratch: ScratchDatabase = await createScratchDatabase(EXTERNAL_POSTGRES_URL, 'shelfsight_cluster');
    cleanups.push(() => scratch.drop());
    const s3: TestS3Server = await startS3Server();
    cleanups.push(() => s3.stop());
    const mosquitto: PrivateMosquitto = await startPrivateMosquitto(join(work, 'mosquitto'));
    cleanups.push(() => mosquitto.stop());
    log(`services: PostgreSQL ${new URL(scratch.url).pathname.slice(1)}, s3rver ${s3.endpoint} bucket ${s3.bucket}, mosquitto ${mosquitto.url} (seed ${SEED})`);

    // Every replica shares the secrets a cluster must agree on: the admin key, the rollout
    // release key and root-signed key list, the download-token secret.
    const apiKey = `cluster-admin-${randomBytes(12).toString('hex')}`;
    const keys = releaseKeysFixture(join(work, 'keys'));
    const gate = { GATE_MIN_EVAL_ROWS: '4', GATE_MAX_CATEGORY_DROP: '1', GATE_MAX_OVERALL_DROP: '1' };
    const backboneRoots = dirname(REFERENCE_BACKBONE);
    const hubEnv = (r: Replica): NodeJS.ProcessEnv => ({
      DATABASE_URL: scratch.url,
      MQTT_URL: mosquitto.url,
      MQTT_SHARE_GROUP: 'cluster',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(r.port),
      DATA_DIR: r.dataDir,
      HUB_API_KEY: apiKey,
      ...s3.env,
      ...keys.hubEnv,
      ROLLOUT_DOWNLOAD_TOKEN_SECRET: 'cluster-download-token-secret-0123456789abcdef',
      ROLLOUT_TICK_MS: '250',
      TRAINING_WORKER: 'off',
      TRAINING_HEARTBEAT_TIMEOUT_S: '20',
      TRAINING_BACKBONE_ROOTS: backboneRoots,
      DETECTION_RETENTION_DAYS: '0',
      AUTH_FAILURES_PER_MINUTE: '100000',
      SAMPLES_PER_DEVICE_PER_DAY: '100000',
      LOG_LEVEL: 'warn',
      ...gate,
    });

    // ---------------------------------------------------------------- hub replicas
    let stopping = false;
    const replicas: Replica[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      const port = await freePort();
      replicas.push({ index: i, port, url: `http://127.0.0.1:${port}`, dataDir: join(work, `hub-${i}`), up: false, starts: 0 });
    }
    const startReplica = (r: Replica): Promise<void> => {
      r.up = false;
      r.starts += 1;
      const proc = spawnShelf(['hub'], hubEnv(r), logTo(`hub-${r.index}`));
      r.proc = proc;
      void proc.exited.then((code) => {
        if (stopping || proc.child.signalCode === 'SIGKILL' || r.proc !== proc) return;
        // A replica that exits by itself (e.g. the database was briefly unreachable) is a failure to report, then restarted.
        log(`replica ${r.index} exited by itself (${code}): ${proc.stderr().slice(-800)}`);
        failures.push(`replica ${r.index} exited by itself (${code})`);
        setTimeout(() => void startReplica(r), 1000);
      });
      return waitForHttp(`${r.url}/health`, 240_000, () => (r.proc !== proc || proc.child.exitCode !== null ? `replica ${r.index} exited while starting: ${proc.stderr().slice(-2000)}` : undefined)).then(() => {
        if (r.proc === proc) r.up = true;
      });
    };
    cleanups.push(async () => {
      stopping = true;
      await Promise.all(replicas.map((r) => r.proc?.stop()));
    });
    // The first replica migrates the fresh database; the others join it.
    await startReplica(replicas[0]!);
    await Promise.all(replicas.slice(1).map(startReplica));
    log(`${REPLICAS} hub replicas up on ${replicas.map((r) => r.port).join(', ')}`);

    // ---------------------------------------------------------------- the operator's client
    let operatorRetries = 0;
    /** A request through a random live replica (the observer's excluded unless `any`); a refused connection or 502/503 tries another. */
    const api = async <T>(method: string, path: string, body?: unknown, opts: { any?: boolean; contentType?: string; exists?: () => Promise<T | undefined> } = {}): Promise<T> => {
      const deadline = Date.now() + 120_000;
      for (let attempt = 0; ; attempt++) {
        const candidates = replicas.filter((r) => r.up && (opts.any || r.index !== OBSERVER));
        if (candidates.length === 0) {
          // Every replica the operator may use is down (restarting): wait for one.
          if (Date.now() > deadline) throw new Error(`${method} ${path}: no replica up`);
          await sleep(250);
          continue;
        }
        const r = pick(candidates);
        try {
          const res = await fetch(`${r.url}${path}`, {
            method,
            headers: { 'X-API-Key': apiKey, ...(body !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {}) },
            ...(body !== undefined ? { body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) } : {}),
            signal: AbortSignal.timeout(60_000),
          });
          const text = await res.text();
          if (res.status === 502 || res.status === 503) throw new Error(`HTTP ${res.status} ${text.slice(0, 200)}`);
          if (!res.ok) throw Object.assign(new Error(`${method} ${path} via replica ${r.index}: HTTP ${res.status} ${text.slice(0, 500)}`), { final: true });
          return (text ? JSON.parse(text) : undefined) as T;
        } catch (err) {
          if ((err as { final?: boolean }).final || Date.now() > deadline) throw err;
          operatorRetries += 1;
          // A create whose answer was cut off may have been committed: look before sending it again.
          const found = opts.exists ? await opts.exists().catch(() => undefined) : undefined;
          if (found !== undefined) return found;
          await sleep(300 + attempt * 200);
        }
      }
    };

    // ---------------------------------------------------------------- SSE observer
    const observer = new SseObserver(`${replicas[OBSERVER]!.url}/events`, apiKey);
    cleanups.push(async () => observer.close());
    await observer.connected;
    log(`SSE observer on replica ${OBSERVER}`);

    // ---------------------------------------------------------------- workers
    const workers: Worker[] = Array.from({ length: WORKERS }, (_, i) => ({ id: `cluster-worker-${i + 1}` }));
    const startWorker = (w: Worker) => {
      w.proc = spawnShelf(
        ['worker'],
        {
          DATABASE_URL: scratch.url,
          DATA_DIR: join(work, w.id),
          WORKER_ID: w.id,
          ...s3.env,
          TRAINING_BACKBONE_ROOTS: backboneRoots,
          TRAINING_HEARTBEAT_TIMEOUT_S: '20',
          LOG_LEVEL: 'warn',
          ...gate,
        },
        logTo(w.id),
      );
    };
    workers.forEach(startWorker);
    cleanups.push(async () => {
      await Promise.all(workers.map((w) => w.proc?.stop()));
    });

    // ---------------------------------------------------------------- the first version
    const photos = Object.fromEntries(LABELS.map((l) => [l, photosOf(join(GROCERY_DIR, PHOTOS[l]!))]));
    const csv = (name: string, from: number, count: number) => {
      const file = join(work, `${name}.csv`);
      writeFileSync(file, 'image,label\n' + LABELS.flatMap((l) => photos[l]!.slice(from, from + count).map((p) => `${p},${l}`)).join('\n') + '\n');
      return file;
    };
    log('training v1 (a head on the reference backbone, 4 photos a category)');
    const v1Dir = join(work, 'v1');
    const { manifest: v1Manifest } = await trainModel({
      ...TRAIN_DEFAULTS,
      backbone: REFERENCE_BACKBONE,
      data: csv('v1-train', 0, 4),
      valData: csv('v1-val', 40, 2),
      testData: csv('v1-test', 30, 4),
      trainingRows: true,
      out: v1Dir,
      cacheDir: join(work, 'cache'),
      distortions: {},
      epochs: 10,
      logger: silentLogger,
    });
    const v1 = v1Manifest.version;
    const evalRows = await postEvaluationRows(replicas[OBSERVER]!.url, v1Manifest.backbone.id, decodeTrainingRows(readFileSync(join(v1Dir, TRAINING_ROWS_FILE))), { testingOnly: true, apiKey });
    if (evalRows.status !== 201) throw new Error(`POST /models/evaluation-rows: HTTP ${evalRows.status} ${JSON.stringify(evalRows.body)}`);
    const tar = await packArtifact({
      manifest: readFileSync(join(v1Dir, MANIFEST_FILE)),
      weights: readFileSync(join(v1Dir, WEIGHTS_FILE)),
      labels: readFileSync(join(v1Dir, LABELS_FILE)),
      trainingRows: readFileSync(join(v1Dir, TRAINING_ROWS_FILE)),
    });
    const registered = await api<{ version: string; releasable: boolean | null }>('POST', '/models', tar, {
      contentType: 'application/gzip',
      exists: async () => {
        const res = await fetch(`${replicas[OBSERVER]!.url}/models/${v1}`, { headers: { 'X-API-Key': apiKey } });
        return res.ok ? ((await res.json()) as { version: string; releasable: boolean | null }) : undefined;
      },
    });
    log(`registered ${registered.version} (releasable ${registered.releasable})`);

    // ---------------------------------------------------------------- the fleet
    interface Agent {
      id: string;
      dir: string;
      httpPort: number;
      proc?: ShelfProcess;
    }
    const agents: Agent[] = [];
    for (let i = 0; i < AGENTS; i++) agents.push({ id: `cluster-robot-${i + 1}`, dir: join(work, `agent-${i + 1}`), httpPort: await freePort() });
    const truth = new Map<string, string>();
    for (const a of agents) {
      mkdirSync(join(a.dir, 'frames'), { recursive: true });
      const cred = await api<{ username: string; password: string }>('POST', `/devices/${a.id}/credentials`, {});
      a.proc = spawnShelf(
        [
          'agent',
          '--device-id', a.id,
          '--site', SITE,
          '--mqtt-url', mosquitto.url,
          '--mqtt-username', cred.username,
          '--mqtt-password', cred.password,
          '--trusted-keys', keys.trustedKeysFile,
          // Artifact downloads from the replica that is never killed (a device talks to a load balancer in production).
          '--hub-http-url', replicas[OBSERVER]!.url,
          '--shadow-frames', '2',
          '--classifier', 'tfjs',
          '--model', v1Dir,
          '--backbone', REFERENCE_BACKBONE,
          '--frames-dir', join(a.dir, 'frames'),
          '--state-dir', join(a.dir, 'state'),
          '--poll-ms', '100',
          '--settle-ms', '0',
          '--heartbeat-ms', '500',
          '--sample-min-confidence', '0.999',
          '--samples-per-minute', '1000',
          '--samples-per-day', '100000',
          '--http-port', String(a.httpPort),
          '--http-host', '127.0.0.1',
        ],
        { LOG_LEVEL: 'warn' },
        logTo(a.id),
      );
    }
    cleanups.push(async () => {
      await Promise.all(agents.map((a) => a.proc?.stop('SIGKILL')));
    });
    // Real grocery photos (frames 20..39 of each category, never trained on), one per agent a second.
    let frameNo = 0;
    const feed = () => {
      for (const [i, a] of agents.entries()) {
        const label = LABELS[(frameNo + i) % LABELS.length]!;
        const photo = photos[label]![20 + (frameNo % 20)]!;
        const name = `f-${String(frameNo).padStart(5, '0')}`;
        // The sidecar first, then the photo moved in whole: the agent never sees half of either.
        writeFileSync(join(a.dir, 'frames', `${name}.json`), JSON.stringify({ location: `A-0${i + 1}-1-${'ABCD'[frameNo % 4]}`, capturedAt: new Date().toISOString() }));
        copyFileSync(photo, join(a.dir, `${name}.part`));
        renameSync(join(a.dir, `${name}.part`), join(a.dir, 'frames', `${name}.jpg`));
        truth.set(frameIdOf(`${name}.jpg`, readFileSync(photo)), label);
      }
      frameNo++;
    };
    feed();
    const feeder = setInterval(feed, 1000);
    cleanups.push(async () => clearInterval(feeder));

    const simState = join(work, 'sim');
    // About as long as the operator's work takes on a loaded machine (the drain waits for the rest).
    const simFrames = Math.max(1, Math.round(SIM_RATE * 90));
    const sim = spawnShelf(
      [
        'sim', '--agents', String(SIM_DEVICES), '--device-prefix', 'cluster-sim-', '--rate', String(SIM_RATE),
        '--frames-per-agent', String(simFrames), '--batch-size', '20', '--mqtt-url', mosquitto.url,
        '--state-dir', simState, '--site', `${SITE}-sim`, '--timeout-s', '600',
      ],
      { LOG_LEVEL: 'error' },
      logTo('sim'),
    );
    cleanups.push(async () => sim.stop('SIGKILL'));
    log(`fleet: ${AGENTS} tfjs agents on grocery photos, ${SIM_DEVICES} simulated devices at ${SIM_RATE} frames/s (${simFrames} frames each)`);

    // ---------------------------------------------------------------- chaos
    let hubKills = 0;
    let samplesQueuedAtKills = 0;
    /** Held while the events probe runs: an event is coalesced for a second before it leaves its replica, so a kill then takes it along (events are not durable). */
    let chaosHeld = false;
    let operatorDone = false;
    const chaos = (async () => {
      const killable = replicas.filter((r) => r.index !== OBSERVER);
      while (!operatorDone || hubKills < MIN_HUB_KILLS) {
        await sleep(3000 + random() * 3000);
        const live = killable.filter((r) => r.up);
        if (live.length === 0 || chaosHeld) continue;
        const r = pick(live);
        // Samples the victim holds in memory for its writer (a lower bound of what the kill can take with it).
        const queued = await fetch(`${r.url}/metrics`, { headers: { 'X-API-Key': apiKey }, signal: AbortSignal.timeout(5000) })
          .then(async (res) => metricSum(await res.text(), 'shelfsight_samples_queued'))
          .catch(() => 0);
        samplesQueuedAtKills += queued;
        log(`kill -9 replica ${r.index}${queued ? ` (${queued} samples queued in its memory)` : ''}`);
        hubKills += 1;
        r.up = false;
        await r.proc!.stop('SIGKILL');
        void startReplica(r).then(
          () => log(`replica ${r.index} back`),
          (err: Error) => {
            failures.push(`replica ${r.index} did not come back: ${err.message.slice(0, 300)}`);
            log(`replica ${r.index} did not come back: ${err.message.slice(0, 1500)}`);
          },
        );
      }
    })();

    // ---------------------------------------------------------------- the operator
    let workerKills = 0;
    let jobsStuckQueued = 0;
    let workerKilledMidJob = false;
    let jobIds: number[] = [];
    let rolloutId: string | undefined;
    let v2: string | undefined;
    let rolloutState = 'not started';
    const probeEvents: Array<{ what: string; ok: boolean; ms: number | undefined }> = [];
    const actions: Array<{ event: string; id: string | number; at: number; what: string }> = [];
    try {
      interface SampleItem {
        id: string;
        frameId: string;
      }
      log(`waiting for ${SAMPLES_TO_LABEL} samples of both categories`);
      let samples: SampleItem[] = [];
      const labelled = (xs: SampleItem[]) => LABELS.map((l) => xs.filter((s) => truth.get(s.frameId) === l).length);
      const sampleDeadline = Date.now() + 300_000;
      while (samples.length < SAMPLES_TO_LABEL || labelled(samples).some((n) => n < 3)) {
        if (Date.now() > sampleDeadline) throw new Error(`only ${samples.length} samples arrived (${labelled(samples).join('/')} of known frames); agent log: ${agents.map((a) => a.proc?.stderr().slice(-800)).join('\n')}`);
        for (const a of agents) if (a.proc?.child.exitCode !== null) throw new Error(`agent ${a.id} exited: ${a.proc?.stderr().slice(-2000)}`);
        await sleep(1000);
        samples = (await api<{ items: SampleItem[] }>('GET', `/samples?site=${SITE}&state=pending&limit=500`)).items;
      }
      for (const l of LABELS) {
        const ids = samples.filter((s) => truth.get(s.frameId) === l).map((s) => s.id);
        await api('POST', '/samples/labels', { ids, category: l });
      }
      log(`${samples.length} samples labelled through random replicas (${labelled(samples).join('/')})`);

      const findJob = async (pred: (j: Job & { createdAt: string }) => boolean) => {
        const list = await api<{ items: Array<Job & { createdAt: string }> } | Array<Job & { createdAt: string }>>('GET', '/training-jobs', undefined, { any: true });
        return (Array.isArray(list) ? list : list.items).find(pred);
      };
      const startJob = async (): Promise<Job> => {
        const after = new Date(Date.now() - 1000).toISOString();
        const known = new Set(jobIds);
        const created = await api<Job>('POST', '/training-jobs', { base: { version: v1 }, head: { type: 'softmax', epochs: 20 } }, { exists: () => findJob((j) => j.createdAt >= after && !known.has(j.id)) });
        actions.push({ event: 'training', id: created.id, at: Date.now(), what: `training job ${created.id} created` });
        jobIds = [created.id];
        log(`training job ${created.id} queued`);
        return created;
      };

      // Kill the worker that runs it (once), then retry the interrupted job.
      let job: Job = await startJob();
      let queuedSince = Date.now();
      const jobDeadline = Date.now() + 400_000;
      const workerByName = (id: string | null) => workers.find((w) => id !== null && (id === w.id || id.startsWith(`${w.id}`)));
      for (;;) {
        if (Date.now() > jobDeadline) throw new Error(`training job ${job.id} still ${job.status} (${job.phase})`);
        await sleep(500);
        job = await api<Job>('GET', `/training-jobs/${job.id}`);
        if (job.status !== 'queued') queuedSince = Date.now();
        else if (Date.now() - queuedSince > 90_000) {
          // Two idle workers and still queued: its queue message was never sent (the replica that
          // took the request died between the job's row and the message). The operator cancels it
          // and starts another; the run fails on it.
          jobsStuckQueued += 1;
          log(`training job ${job.id} queued for 90 s with two idle workers: cancelled, another started`);
          await api('POST', `/training-jobs/${job.id}/cancel`, {});
          job = await startJob();
          queuedSince = Date.now();
          continue;
        }
        if (workerKills === 0 && job.status === 'running' && job.workerId) {
          const w = workerByName(job.workerId) ?? pick(workers);
          log(`kill -9 ${w.id} (running job ${job.id}, phase ${job.phase})`);
          workerKills += 1;
          workerKilledMidJob = workerByName(job.workerId) !== undefined;
          await w.proc!.stop('SIGKILL');
          await sleep(1000);
          startWorker(w);
        }
        if (job.status === 'done') break;
        if (job.status === 'failed' || job.status === 'cancelled') {
          if (job.error !== 'interrupted' || jobIds.length > 2) throw new Error(`training job ${job.id} ${job.status}: ${job.error}`);
          const retried = await api<Job>('POST', `/training-jobs/${job.id}/retry`, {}, { exists: () => findJob((j) => j.rootId === job.rootId && j.attempt > job.attempt) });
          actions.push({ event: 'training', id: retried.id, at: Date.now(), what: `training job ${job.id} retried as ${retried.id}` });
          log(`job ${job.id} ended interrupted; retried as job ${retried.id}`);
          jobIds.push(retried.id);
          job = retried;
        }
      }
      if (workerKills === 0) {
        // The job finished before a worker took it visibly: a worker is still killed once.
        const w = pick(workers);
        log(`kill -9 ${w.id} (idle: the job ended before it was seen running)`);
        workerKills += 1;
        await w.proc!.stop('SIGKILL');
        startWorker(w);
      }
      v2 = job.resultVersion ?? undefined;
      if (!v2) throw new Error(`training job ${job.id} is done without a version`);
      const model = await api<{ releasable: boolean | null; gateReason: string | null }>('GET', `/models/${encodeURIComponent(v2)}`);
      log(`job ${job.id} registered ${v2} (releasable ${model.releasable}: ${model.gateReason ?? ''})`);
      if (model.releasable !== true) throw new Error(`${v2} is not releasable: ${model.gateReason}`);

      const rolloutAfter = new Date(Date.now() - 1000).toISOString();
      const rollout = await api<Rollout>(
        'POST',
        '/rollouts',
        {
          modelVersion: v2,
          target: { deviceIds: agents.map((a) => a.id) },
          stages: [
            { percent: 50, minSoakSeconds: 1, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } },
            { percent: 100, minSoakSeconds: 1, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } },
          ],
          // About delivery across a cluster, not the shadow gate: the retrained head is meant to change predictions.
          policy: { shadowFrames: 2, shadowGate: false, overrideReason: 'cluster test: the retrained head is meant to change its predictions' },
        },
        {
          exists: async () => {
            const list = await api<{ items: Array<Rollout & { modelVersion: string; createdAt: string }> } | Array<Rollout & { modelVersion: string; createdAt: string }>>('GET', '/rollouts', undefined, { any: true });
            return (Array.isArray(list) ? list : list.items).find((x) => x.modelVersion === v2 && x.createdAt >= rolloutAfter);
          },
        },
      );
      rolloutId = rollout.id;
      actions.push({ event: 'rollout', id: rollout.id, at: Date.now(), what: `rollout ${rollout.id} created` });
      log(`rollout ${rollout.id} of ${v2} to ${AGENTS} agents in two stages`);
      const rolloutDeadline = Date.now() + 300_000;
      let lastStages = '';
      for (;;) {
        const v = await api<Rollout>('GET', `/rollouts/${rollout.id}`, undefined, { any: true });
        rolloutState = v.state;
        const stages = v.stages.map((s) => s.state).join(',');
        if (stages !== lastStages) log(`rollout ${v.state}: stages ${stages}`);
        lastStages = stages;
        if (v.state === 'completed') break;
        if (v.state === 'halted' || v.state === 'aborted') throw new Error(`rollout ${v.state}: ${v.haltReason}`);
        if (Date.now() > rolloutDeadline) throw new Error(`rollout still ${v.state} (stages ${stages})`);
        await sleep(1000);
      }

      // The events probe: a rollout to a provisioned device that never connects, created,
      // paused, resumed and aborted through the replicas the observer is not on. Nothing
      // else touches it (no device reports, no stage decisions within its hour of soak), so
      // each of its events on the observer crossed replicas: each must arrive within 15 s.
      chaosHeld = true;
      const allUp = Date.now() + 240_000;
      while (replicas.some((r) => !r.up) && Date.now() < allUp) await sleep(250);
      const ghost = 'cluster-ghost-1';
      await api('POST', `/devices/${ghost}/credentials`, {});
      const probeAfter = new Date(Date.now() - 1000).toISOString();
      const probeSent = Date.now();
      const probe = await api<Rollout>(
        'POST',
        '/rollouts',
        {
          modelVersion: v2,
          target: { deviceIds: [ghost] },
          stages: [{ percent: 100, minSoakSeconds: 3600, successThreshold: 1, abort: { maxFailurePercent: 0, minDevices: 1 } }],
        },
        {
          exists: async () => {
            const list = await api<Array<Rollout & { modelVersion: string; createdAt: string }>>('GET', '/rollouts', undefined, { any: true });
            return list.find((x) => x.id !== rolloutId && x.modelVersion === v2 && x.createdAt >= probeAfter);
          },
        },
      );
      const probeAction = async (what: string, sent: number) => {
        const seen = Date.now() + 15_000;
        while (!observer.saw('rollout', probe.id, sent) && Date.now() < seen) await sleep(100);
        const ok = observer.saw('rollout', probe.id, sent);
        probeEvents.push({ what, ok, ms: ok ? observer.events.find((e) => e.name === 'rollout' && e.at >= sent && (e.data as { id?: string }).id === probe.id)!.at - sent : undefined });
        log(`events probe: ${what} ${ok ? 'reached' : 'did NOT reach'} the observer`);
      };
      await probeAction(`rollout ${probe.id} created`, probeSent);
      for (const action of ['pause', 'resume', 'abort']) {
        // Past the observer's coalescing window, so each action is an event of its own.
        await sleep(1500);
        const sent = Date.now();
        await api('POST', `/rollouts/${probe.id}/${action}`, {});
        await probeAction(`rollout ${probe.id} ${action}`, sent);
      }
      chaosHeld = false;
    } catch (err) {
      failures.push(`operator: ${(err as Error).message}`);
      log(`operator FAILED: ${(err as Error).stack ?? String(err)}`);
    } finally {
      operatorDone = true;
    }
    await chaos;
    log(`chaos over: ${hubKills} hub kills, ${workerKills} worker kill(s)`);

    // ---------------------------------------------------------------- drain
    clearInterval(feeder);
    const everyReplicaUp = Date.now() + 240_000;
    while (replicas.some((r) => !r.up) && Date.now() < everyReplicaUp) await sleep(500);
    log('every replica up; waiting for the fleet to drain');
    const agentMetrics = async (a: Agent) => fetch(`http://127.0.0.1:${a.httpPort}/metrics`).then((r) => r.text());
    const drainDeadline = Date.now() + 240_000;
    for (;;) {
      const texts = await Promise.all(agents.map((a) => agentMetrics(a).catch(() => '')));
      // Frames not yet handled (of the `frameNo` each agent was given), queued, or stored and not yet acknowledged.
      const busy = texts.map((t) => frameNo - metricSum(t, 'shelf_agent_frames_total') + metricSum(t, 'shelf_agent_outbox_depth') + metricSum(t, 'shelf_agent_queue_depth'));
      const simDone = sim.child.exitCode !== null;
      if (busy.every((n) => n === 0) && simDone) break;
      if (Date.now() > drainDeadline) {
        failures.push(`the fleet did not drain: agents' outbox+queue ${busy.join(',')}, sim ${simDone ? 'done' : 'running'}`);
        break;
      }
      await sleep(1000);
    }
    if (sim.child.exitCode !== null && sim.child.exitCode !== 0) failures.push(`shelf sim exited ${sim.child.exitCode}: ${sim.stderr().slice(-500)}`);
    const samplesSent = new Map<string, number>();
    let framesNotDetected = 0;
    for (const a of agents) {
      const text = await agentMetrics(a).catch(() => '');
      samplesSent.set(a.id, metricSum(text, 'shelf_agent_samples_total', { outcome: 'sent' }));
      framesNotDetected += frameNo - metricSum(text, 'shelf_agent_frames_total', { outcome: 'detected' });
    }
    // A replica writes the samples it took a little later (its sample writer has its own queue):
    // wait until every sent sample is stored, or the count has stood still for 15 s.
    const samplesSentNow = [...samplesSent.values()].reduce((n, x) => n + x, 0);
    {
      const counter = new Client({ connectionString: scratch.url });
      await counter.connect();
      let last = -1;
      let stillSince = Date.now();
      for (const end = Date.now() + 120_000; Date.now() < end; ) {
        const n = ((await counter.query(`SELECT count(*)::int AS n FROM samples WHERE device_id = ANY($1)`, [agents.map((a) => a.id)])).rows[0] as { n: number }).n;
        if (n >= samplesSentNow) break;
        if (n !== last) [last, stillSince] = [n, Date.now()];
        else if (Date.now() - stillSince > 15_000) break;
        await sleep(1000);
      }
      await counter.end();
    }
    await Promise.all(agents.map((a) => a.proc?.stop()));
    await sim.stop('SIGKILL');

    // ---------------------------------------------------------------- what the fleet sent
    const sentByDevice: Record<string, number> = {};
    let unackedAtEnd = 0;
    const outboxes = [
      ...agents.map((a) => ({ device: a.id, dir: join(a.dir, 'state', 'outbox') })),
      ...Array.from({ length: SIM_DEVICES }, (_, i) => ({ device: `cluster-sim-${i + 1}`, dir: join(simState, `cluster-sim-${i + 1}`, 'outbox') })),
    ];
    for (const o of outboxes) {
      const { outbox, recovery } = await Outbox.open(o.dir, { maxBytes: 1 << 30, logger: silentLogger });
      await outbox.close();
      sentByDevice[o.device] = recovery.nextSeq - 1;
      unackedAtEnd += recovery.pending;
    }
    const detectionsSent = Object.values(sentByDevice).reduce((n, x) => n + x, 0);

    // ---------------------------------------------------------------- what the cluster stored
    const sql = new Client({ connectionString: scratch.url });
    await sql.connect();
    const devices = Object.keys(sentByDevice);
    const perDevice = (
      await sql.query(
        `SELECT device_id, count(*)::int AS rows, count(DISTINCT seq)::int AS seqs, count(DISTINCT frame_id)::int AS frames
         FROM detections WHERE device_id = ANY($1) GROUP BY device_id`,
        [devices],
      )
    ).rows as Array<{ device_id: string; rows: number; seqs: number; frames: number }>;
    const missing = (
      await sql.query(
        `SELECT count(*)::int AS n FROM unnest($1::text[], $2::int[]) AS d(id, sent)
         CROSS JOIN LATERAL generate_series(1, d.sent) s
         WHERE NOT EXISTS (SELECT 1 FROM detections x WHERE x.device_id = d.id AND x.seq = s)`,
        [devices, devices.map((d) => sentByDevice[d])],
      )
    ).rows[0] as { n: number };
    const rows = perDevice.reduce((n, d) => n + d.rows, 0);
    const seqs = perDevice.reduce((n, d) => n + d.seqs, 0);
    const frames = perDevice.reduce((n, d) => n + d.frames, 0);
    const detectionsDouble = rows - seqs + (seqs - frames);

    const sampleRows = (
      await sql.query(`SELECT id::text AS id, device_id, sample_id, thumbnail_sha256, thumbnail_bytes FROM samples WHERE device_id = ANY($1)`, [agents.map((a) => a.id)])
    ).rows as Array<{ id: string; device_id: string; sample_id: string; thumbnail_sha256: string; thumbnail_bytes: number }>;
    const samplesStoredByDevice = new Map<string, number>();
    for (const s of sampleRows) samplesStoredByDevice.set(s.device_id, (samplesStoredByDevice.get(s.device_id) ?? 0) + 1);
    const samplesDouble = sampleRows.length - new Set(sampleRows.map((s) => `${s.device_id}\u0000${s.sample_id}`)).size;
    const samplesSentTotal = [...samplesSent.values()].reduce((n, x) => n + x, 0);
    const samplesLost = agents.reduce((n, a) => n + Math.max(0, (samplesSent.get(a.id) ?? 0) - (samplesStoredByDevice.get(a.id) ?? 0)), 0);

    const jobRows = jobIds.length
      ? ((await sql.query(`SELECT id::int AS id, root_id::int AS root, attempt, status, error, worker_id, result_version FROM training_jobs WHERE coalesce(root_id, id) = $1 ORDER BY id`, [jobIds[0]])).rows as Array<{
          id: number;
          root: number | null;
          attempt: number;
          status: string;
          error: string | null;
          worker_id: string | null;
          result_version: string | null;
        }>)
      : [];
    // Versions registered by any attempt of the job (an attempt cut off after registering, then retried, would make two).
    const versionsOfJob = (
      await sql.query(`SELECT count(*)::int AS n FROM model_versions WHERE source = 'job' AND lineage->>'jobId' = ANY($1)`, [jobRows.map((j) => String(j.id))])
    ).rows[0] as { n: number };
    const doneAttempts = jobRows.filter((j) => j.status === 'done').length;
    const jobsRunTwice = Math.max(0, doneAttempts - 1) + Math.max(0, versionsOfJob.n - 1);
    await sql.end();
    log(`job attempts: ${jobRows.map((j) => `${j.id} ${j.status}${j.error ? ` (${j.error})` : ''} on ${j.worker_id ?? '-'}`).join('; ')}`);

    // Every stored sample's thumbnail, through every replica: the same bytes as its hash.
    let thumbnailsChecked = 0;
    let thumbnailsUnreadable = 0;
    const queue = sampleRows.flatMap((s) => replicas.map((r) => ({ s, r })));
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const { s, r } = next;
          thumbnailsChecked += 1;
          const got = await fetch(`${r.url}/samples/${s.id}/thumbnail`, { headers: { 'X-API-Key': apiKey } })
            .then(async (res) => ({ status: res.status, body: Buffer.from(await res.arrayBuffer()) }))
            .catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }));
          if (got.status !== 200 || createHash('sha256').update(got.body).digest('hex') !== s.thumbnail_sha256) {
            thumbnailsUnreadable += 1;
            if (thumbnailsUnreadable <= 6) {
              log(`thumbnail of sample ${s.id} (${s.thumbnail_bytes} bytes, ${s.thumbnail_sha256.slice(0, 12)}) unreadable from replica ${r.index}: HTTP ${got.status}, ${got.body.length} bytes${got.status === 200 ? '' : ` ${got.body.toString().slice(0, 200)}`}`);
            }
          }
        }
      }),
    );

    // The rollout as every replica sees it.
    let rolloutDevicesOnV2 = 0;
    if (rolloutId) {
      const v = (await (await fetch(`${replicas[OBSERVER]!.url}/rollouts/${rolloutId}`, { headers: { 'X-API-Key': apiKey } })).json()) as Rollout;
      rolloutState = v.state;
      rolloutDevicesOnV2 = (v.devices ?? []).filter((d) => d.state === 'active' && d.activeVersion === v2).length;
    }

    // The observer's events of actions taken through other replicas.
    await sleep(2000);
    // The operator's actions: the observer saw an event about each. Training jobs are also watched
    // on every replica from the database and the rollout's devices report to any replica, so only
    // the probe's events (above) are sure to have crossed replicas.
    const missedActions = actions.filter((a) => !observer.saw(a.event, a.id, a.at - 5000));
    for (const m of missedActions) log(`event missed on replica ${OBSERVER}: ${m.event} for ${m.what}`);
    const missed = [...missedActions, ...probeEvents.filter((p) => !p.ok)];
    const probeMs = probeEvents.flatMap((p) => (p.ms === undefined ? [] : [p.ms])).sort((a, b) => a - b);
    if (observer.ended) failures.push(`the SSE stream on replica ${OBSERVER} ended: ${observer.ended}`);

    const result = {
      replicas: REPLICAS,
      workers: WORKERS,
      blob_store: 's3',
      hub_kills: hubKills,
      worker_kills: workerKills,
      worker_killed_mid_job: workerKilledMidJob,
      devices: devices.length,
      detections_sent: detectionsSent,
      detections_stored: seqs,
      agent_frames: frameNo * AGENTS,
      agent_frames_not_detected: framesNotDetected,
      detections_lost: missing.n,
      detections_double: detectionsDouble,
      unacked_at_end: unackedAtEnd,
      samples_sent: samplesSentTotal,
      samples_stored: sampleRows.length,
      samples_lost: samplesLost,
      samples_double: samplesDouble,
      thumbnails_checked: thumbnailsChecked,
      thumbnails_unreadable: thumbnailsUnreadable,
      job_attempts: jobRows.length,
      job_done: doneAttempts === 1,
      jobs_run_twice: jobsRunTwice,
      jobs_stuck_queued: jobsStuckQueued,
      rollout: rolloutState,
      rollout_devices_on_new_version: rolloutDevicesOnV2,
      events_expected: actions.length + probeEvents.length,
      events_missed: missed.length,
      events_probe: probeEvents.length,
      events_probe_missed: probeEvents.filter((p) => !p.ok).length,
      events_probe_max_ms: probeMs.length ? probeMs[probeMs.length - 1] : null,
      samples_queued_at_kills: samplesQueuedAtKills,
      operator_retries: operatorRetries,
      seconds: Math.round((Date.now() - t0) / 1000),
      cpus: cpus().length,
      load_1m: +(loadavg()[0] ?? 0).toFixed(1),
      seed: SEED,
    };
    const check = (ok: boolean, what: string) => {
      if (!ok) failures.push(what);
    };
    check(detectionsSent > 0, 'no detection was sent');
    check(framesNotDetected === 0, `${framesNotDetected} of the agents' grocery photos were not detected (rejected or dropped)`);
    check(result.detections_lost === 0, `${result.detections_lost} detections lost`);
    check(result.detections_double === 0, `${result.detections_double} detections stored more than once`);
    check(result.unacked_at_end === 0, `${result.unacked_at_end} detections unacknowledged at the end`);
    check(samplesSentTotal > 0 && sampleRows.length > 0, 'no sample was sent or stored');
    check(samplesLost === 0, `${samplesLost} samples lost`);
    check(samplesDouble === 0, `${samplesDouble} samples stored more than once`);
    check(thumbnailsUnreadable === 0, `${thumbnailsUnreadable} of ${thumbnailsChecked} thumbnail reads failed`);
    check(doneAttempts === 1, `the job finished ${doneAttempts} times`);
    check(jobsRunTwice === 0, `${jobsRunTwice} job(s) run twice`);
    check(jobsStuckQueued === 0, `${jobsStuckQueued} job(s) stayed queued with no queue message (their replica was killed between the row and the message)`);
    check(rolloutState === 'completed' && rolloutDevicesOnV2 === AGENTS, `rollout ${rolloutState}, ${rolloutDevicesOnV2} of ${AGENTS} agents on the new version`);
    check(hubKills >= MIN_HUB_KILLS, `only ${hubKills} hub kills`);
    check(workerKills === 1, `${workerKills} worker kills`);
    check(probeEvents.length === 4, `the events probe ran ${probeEvents.length} of 4 actions`);
    check(missed.length === 0, `${missed.length} of ${actions.length + probeEvents.length} events missed by the observer`);
    for (const f of failures) log(`FAILED: ${f}`);
    return { ok: failures.length === 0, result: { ok: failures.length === 0, ...result, failures } };
  } finally {
    for (const c of cleanups.reverse()) await c().catch((err: Error) => log(`cleanup: ${err.message}`));
    if (process.env.CLUSTER_KEEP !== '1') rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  ({ ok, result }) => {
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(ok ? 0 : 1);
  },
  (err: unknown) => {
    process.stderr.write(`cluster: FAILED ${(err as Error).stack ?? String(err)}\n`);
    process.stdout.write(JSON.stringify({ ok: false, error: (err as Error).message }) + '\n');
    process.exit(1);
  },
);
