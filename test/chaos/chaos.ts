/**
 * Chaos run (`npm run test:chaos`): several agent processes stream numbered frames to a
 * hub while this harness kill -9s an agent, the hub (with its embedded broker) or the
 * database at random moments, in random order, and restarts them; every run kills each
 * of the three at least once (the last chances are kept for a kind not yet killed). When
 * the dust settles it checks the database against what the agents' outboxes say they
 * sent, and prints as its last line one JSON object: sent, stored, lost, double_counted,
 * seq_conflicts, kills. Exit code 1 unless something was sent and all of it stored
 * exactly once, with consistent state and history, no sequence number reused with
 * another frame (the hub's shelfsight_detections_seq_conflicts_total, summed over its
 * restarts) and each kind killed at least once.
 */
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { Outbox } from '@shelfsight/agent';
import { silentLogger } from '@shelfsight/common';
import { checkInventoryConsistency } from '@shelfsight/db';
import { freePort, metricSum, spawnShelf, waitForHttp, type ShelfProcess } from '@shelfsight/cli';
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

type Victim = 'agent' | 'hub' | 'database';

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
  // Seq conflicts per hub process: its counter as last polled, and the counts its log lines name.
  const hubConflicts: Array<{ proc: ShelfProcess; polled: number }> = [];
  const startHub = () => {
    hub = spawnShelf(['hub'], hubEnv);
    hubConflicts.push({ proc: hub, polled: 0 });
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

  const pollConflicts = setInterval(() => {
    const current = hubConflicts[hubConflicts.length - 1];
    void fetch(`http://127.0.0.1:${httpPort}/metrics`)
      .then((r) => r.text())
      .then((text) => {
        if (current) current.polled = Math.max(current.polled, metricSum(text, 'shelfsight_detections_seq_conflicts_total'));
      })
      .catch(() => undefined);
  }, 1000);

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

  // Chaos: every 2-6 s kill -9 a random victim, bring it back 0.5-3 s later. Each kind
  // (agent, hub + broker, database) is killed at least once: when the chances left (at
  // least one per 10 s: the pause plus a victim's downtime) are no more than the kinds
  // not yet killed, the pick is among those; past the deadline only those are killed.
  const notYetKilled = new Set<Victim>(['agent', 'hub', 'database']);
  while (Date.now() < deadline - 3000 || notYetKilled.size > 0) {
    await sleep(2000 + random() * 4000);
    const left = deadline - 3000 - Date.now();
    const chancesLeft = left > 0 ? 1 + Math.floor(left / 10_000) : 0;
    const kinds: Victim[] = chancesLeft <= notYetKilled.size ? [...notYetKilled] : ['agent', 'hub', 'database'];
    // Agents are picked in proportion to their number, as before: one of AGENTS + 2 victims.
    const weights = kinds.map((k) => (k === 'agent' ? AGENTS : 1));
    let r = random() * weights.reduce((a, b) => a + b, 0);
    const kind = kinds.find((_, i) => (r -= weights[i]!) < 0) ?? kinds[kinds.length - 1]!;
    if (kind === 'agent' && agents.every((x) => x.finished || !x.proc)) {
      if (left <= 0) break; // every agent is done: no agent left to kill (reported as a failure below)
      continue;
    }
    const downMs = 500 + random() * 2500;
    if (kind === 'agent') {
      const running = agents.filter((x) => !x.finished && x.proc);
      const a = running[Math.floor(random() * running.length)]!;
      log(`kill -9 agent ${a.id}`);
      a.kills += 1;
      notYetKilled.delete('agent');
      await a.proc!.stop('SIGKILL');
      await sleep(downMs);
      startAgent(a);
    } else if (kind === 'hub') {
      log('kill -9 hub (and its embedded broker)');
      hubKills += 1;
      notYetKilled.delete('hub');
      await hub!.stop('SIGKILL'); // the supervisor restarts it
    } else {
      log('kill -9 database');
      dbKills += 1;
      notYetKilled.delete('database');
      db.kill();
      await sleep(downMs);
      await db.start();
      log('database back');
    }
  }
  log(`kills: agents ${agents.reduce((n, a) => n + a.kills, 0)}, hub ${hubKills}, database ${dbKills}`);

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

  clearInterval(pollConflicts);
  // Read the last hub's counter once more, then add what every hub process logged (a hub
  // killed between two polls still wrote its warning line when it found the conflict).
  const last = hubConflicts[hubConflicts.length - 1];
  if (last) {
    const text = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text()).catch(() => '');
    last.polled = Math.max(last.polled, metricSum(text, 'shelfsight_detections_seq_conflicts_total'));
  }
  const seqConflicts = hubConflicts.reduce((n, h) => n + Math.max(h.polled, loggedConflicts(h.proc.stdout() + h.proc.stderr())), 0);

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
    seq_conflicts: seqConflicts,
    kills: { agents: agents.reduce((n, a) => n + a.kills, 0), hub: hubKills, database: dbKills },
    seconds: Math.round((Date.now() - t0) / 1000),
    seed: SEED,
  };
  await hub?.stop();
  await db.stop();
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result) + '\n');
  const failures = [
    result.sent > 0 ? undefined : 'nothing was sent',
    result.stored === result.sent ? undefined : `stored ${result.stored} of ${result.sent} sent`,
    result.lost === 0 ? undefined : `${result.lost} lost`,
    result.double_counted === 0 ? undefined : `${result.double_counted} double counted`,
    result.unacked_at_end === 0 ? undefined : `${result.unacked_at_end} unacknowledged at the end`,
    result.inventory_mismatches === 0 && result.history_mismatches === 0 ? undefined : 'inventory state or history disagree with the detections',
    result.seq_conflicts === 0 ? undefined : `${result.seq_conflicts} sequence numbers reused with another frame`,
    result.kills.agents > 0 && result.kills.hub > 0 && result.kills.database > 0 ? undefined : 'not every kind (agent, hub, database) was killed: run longer (CHAOS_SECONDS)',
  ].filter((f): f is string => f !== undefined);
  for (const f of failures) log(`FAILED: ${f}`);
  process.exitCode = failures.length === 0 ? 0 : 1;
}

/** Seq conflicts a hub's log names (its warnings are rate-limited, so this is a lower bound). */
function loggedConflicts(log: string): number {
  return [...log.matchAll(/(\d+) detection\(s\) refused: sequence number reused/g)].reduce((n, m) => n + Number(m[1]), 0);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
