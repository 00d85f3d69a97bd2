/**
 * Chaos run (`npm run test:chaos`): several agent processes stream numbered frames to a
 * hub while this harness kill -9s an agent, the hub (with its embedded broker) and the
 * database at random moments and restarts them. When the dust settles it checks the
 * database against what the agents' outboxes say they sent, and prints as its last line
 * one JSON object: sent, stored, lost, double_counted. Exit code 1 if anything was lost
 * or double counted.
 */
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { Outbox } from '@shelfsight/agent';
import { silentLogger } from '@shelfsight/common';
import { checkInventoryConsistency } from '@shelfsight/db';
import { freePort, spawnShelf, waitForHttp, type ShelfProcess } from '@shelfsight/cli';
import { OwnedPostgres } from './owned-postgres';

const AGENTS = Number(process.env.CHAOS_AGENTS ?? 3);
const CHAOS_S = Number(process.env.CHAOS_SECONDS ?? 60);
const RATE = Number(process.env.CHAOS_RATE ?? 25);
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);

let rngState = SEED;
function random(): number {
  rngState = (rngState * 1103515245 + 12345) % 2147483648;
  return rngState / 2147483648;
}
const log = (msg: string) => process.stderr.write(`[chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
const t0 = Date.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Agent {
  id: string;
  stateRoot: string;
  proc?: ShelfProcess;
  finished: boolean;
  kills: number;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-chaos-'));
  chmodSync(work, 0o755);
  const db = new OwnedPostgres(join(work, 'pg'), await freePort());
  db.init();
  await db.start();
  log(`database up on ${db.port} (seed ${SEED})`);

  const httpPort = await freePort();
  const mqttPort = await freePort();
  const hubEnv = {
    DATABASE_URL: db.url,
    HTTP_PORT: String(httpPort),
    HTTP_HOST: '127.0.0.1',
    MQTT_PORT: String(mqttPort),
    MQTT_HOST: '127.0.0.1',
    DATA_DIR: join(work, 'hub'),
    MQTT_AUTH: 'off',
  };
  let hub: ShelfProcess | undefined;
  let hubKills = 0;
  let dbKills = 0;
  const startHub = () => {
    hub = spawnShelf(['hub'], hubEnv);
    // The hub exits if the database is down while it starts; a supervisor restarts it.
    void hub.exited.then((code) => {
      if (stopping) return;
      log(`hub exited (${code ?? 'killed'}); supervisor restarts it`);
      setTimeout(startHub, 1000);
    });
  };
  let stopping = false;
  startHub();
  await waitForHttp(`http://127.0.0.1:${httpPort}/health`, 90_000);
  log('hub up');

  const deadline = Date.now() + CHAOS_S * 1000;
  const agents: Agent[] = Array.from({ length: AGENTS }, (_, i) => ({
    id: `chaos-${i + 1}-1`,
    stateRoot: join(work, `agent-${i + 1}`),
    finished: false,
    kills: 0,
  }));
  const startAgent = (a: Agent) => {
    const remaining = Math.max(1, Math.ceil(((deadline - Date.now()) / 1000) * RATE));
    mkdirSync(a.stateRoot, { recursive: true });
    a.proc = spawnShelf(
      [
        'sim', '--agents', '1', '--device-prefix', a.id.replace(/1$/, ''), '--rate', String(RATE),
        '--frames-per-agent', String(remaining), '--batch-size', '20', '--queue-size', '10000',
        '--mqtt-url', `mqtt://127.0.0.1:${mqttPort}`, '--state-dir', a.stateRoot, '--site', 'chaos', '--timeout-s', '600',
      ],
      { LOG_LEVEL: process.env.CHAOS_AGENT_LOG_LEVEL ?? 'error', MQTT_AUTH: 'off' },
      process.env.CHAOS_LOG_DIR ? (chunk) => appendFileSync(join(process.env.CHAOS_LOG_DIR!, `${a.id}.log`), chunk) : undefined,
    );
    const proc = a.proc;
    void proc.exited.then((code) => {
      if (code === 0) a.finished = true;
      else if (proc.child.signalCode !== 'SIGKILL') {
        log(`agent ${a.id} exited unexpectedly (${code ?? proc.child.signalCode}): ${proc.stderr().slice(-800)} ${proc.stdout().slice(-800)}`);
      }
    });
  };
  for (const a of agents) startAgent(a);

  // Chaos: every 2-6 s kill -9 a random victim, bring it back 0.5-3 s later.
  while (Date.now() < deadline - 3000) {
    await sleep(2000 + random() * 4000);
    const pick = Math.floor(random() * (AGENTS + 2));
    const downMs = 500 + random() * 2500;
    if (pick < AGENTS) {
      const a = agents[pick]!;
      if (a.finished || !a.proc) continue;
      log(`kill -9 agent ${a.id}`);
      a.kills += 1;
      await a.proc.stop('SIGKILL');
      await sleep(downMs);
      startAgent(a);
    } else if (pick === AGENTS) {
      log('kill -9 hub (and its embedded broker)');
      hubKills += 1;
      await hub!.stop('SIGKILL'); // the supervisor restarts it
    } else {
      log('kill -9 database');
      dbKills += 1;
      db.kill();
      await sleep(downMs);
      await db.start();
      log('database back');
    }
  }

  log('chaos over; waiting for every agent to drain its outbox');
  const drainDeadline = Date.now() + 180_000;
  while (!agents.every((a) => a.finished) && Date.now() < drainDeadline) await sleep(500);
  stopping = true;
  for (const a of agents.filter((x) => !x.finished)) log(`agent ${a.id} did not finish: ${a.proc?.stderr().slice(-1500)}`);
  log('drained');

  // What the devices sent: every sequence number their outboxes ever handed out.
  let sent = 0;
  let pendingAtEnd = 0;
  const sentByDevice: Record<string, number> = {};
  for (const a of agents) {
    if (!a.finished) await a.proc?.stop('SIGKILL');
    const { outbox, recovery } = await Outbox.open(join(a.stateRoot, a.id, 'outbox'), { maxBytes: 1 << 30, logger: silentLogger });
    await outbox.close();
    sentByDevice[a.id] = recovery.nextSeq - 1;
    sent += recovery.nextSeq - 1;
    pendingAtEnd += recovery.pending;
  }

  const sql = new Client({ connectionString: db.url });
  await sql.connect();
  const perDevice = (
    await sql.query(
      `SELECT device_id, count(*)::int AS rows, count(DISTINCT seq)::int AS seqs, count(DISTINCT frame_id)::int AS frames
       FROM detections WHERE site = 'chaos' GROUP BY device_id`,
    )
  ).rows as Array<{ device_id: string; rows: number; seqs: number; frames: number }>;
  const missing = (
    await sql.query(
      `SELECT d.id AS device_id, count(*)::int AS n FROM unnest($1::text[], $2::int[]) AS d(id, sent)
       CROSS JOIN LATERAL generate_series(1, d.sent) s
       WHERE NOT EXISTS (SELECT 1 FROM detections x WHERE x.device_id = d.id AND x.seq = s)
       GROUP BY d.id`,
      [Object.keys(sentByDevice), Object.values(sentByDevice)],
    )
  ).rows as Array<{ device_id: string; n: number }>;
  const consistency = await checkInventoryConsistency(sql, 0.5);
  await sql.end();

  const stored = perDevice.reduce((n, d) => n + d.seqs, 0);
  const rows = perDevice.reduce((n, d) => n + d.rows, 0);
  const result = {
    sent,
    stored,
    lost: missing.reduce((n, m) => n + m.n, 0),
    double_counted: rows - perDevice.reduce((n, d) => n + d.frames, 0) + (rows - stored),
    unacked_at_end: pendingAtEnd,
    inventory_mismatches: consistency.stateMismatches,
    history_mismatches: consistency.historyMismatches,
    kills: { agents: agents.reduce((n, a) => n + a.kills, 0), hub: hubKills, database: dbKills },
    seconds: Math.round((Date.now() - t0) / 1000),
    seed: SEED,
  };
  await hub?.stop();
  await db.stop();
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = result.lost === 0 && result.double_counted === 0 && result.unacked_at_end === 0 && result.inventory_mismatches === 0 && result.history_mismatches === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
