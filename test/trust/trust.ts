/**
 * `npm run test:trust`: the adversarial harness of issue 17. A real hub (on a scratch
 * PostgreSQL database, its embedded broker, a training worker child) and real agents
 * (the agent's own code with the stand-in classifier, on the hub's broker) are attacked
 * the ways the issue lists; each attack must be refused.
 *
 * One line per attack on stdout: name, outcome, refused yes/no (or not built). The last
 * line is one JSON object: attacks, refused, not_built, released_regressions (0),
 * devices_left_on_halted_version (0), private_keys_in_database_dump (0: a real `pg_dump` of
 * the hub's database holds no PEM/PKCS8 private key and not the bytes of the hub's own
 * keys). Exit code 1 when a built attack was not refused or a counter is not 0.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { metricSum } from '@shelfsight/common';
import { eventually, hubFetch, startTestHub, TEST_ADMIN_KEY, type TestHub } from '../support/test-hub';
import { REFERENCE_BACKBONE } from '../support/workspace-data';
import { fleetAttacks, type FleetAttackResult } from './fleet-attacks';
import { gateAttacks } from './gate-attacks';

const t0 = Date.now();
const log = (m: string) => process.stderr.write(`[trust +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What one attack came to. `refused` undefined: the defence it tries is not built yet. */
interface AttackResult {
  name: string;
  outcome: string;
  refused: boolean | undefined;
}

/** Everything an attack may use: the hub, its data folder, the harness's scratch folder. */
interface Rig {
  sut: TestHub;
  url: string;
  dataDir: string;
  work: string;
  /** A value only the hub's environment holds: no API answer may ever contain it. */
  canary: string;
  counters: { released_regressions: number; devices_left_on_halted_version: number };
}

type Attack = { name: string; run: (rig: Rig) => Promise<{ refused: boolean; outcome: string }> } | { name: string; notBuilt: string };

const json = async (res: Response): Promise<Record<string, unknown>> => {
  const text = await res.text();
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { text };
  }
};
const post = async (rig: Rig, path: string, body: unknown, init: { apiKey?: string | null; headers?: Record<string, string> } = {}) => {
  const res = await hubFetch(`${rig.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...init.headers }, apiKey: init.apiKey });
  return { status: res.status, body: await json(res) };
};

// ---------------------------------------------------------------- inputs (part 4)

/** A training job whose dataset or backbone points outside the roots: 400 naming the rule, nothing opened. */
function jobPathAttack(name: string, request: Record<string, unknown>, rule: RegExp): Attack {
  return {
    name,
    async run(rig) {
      const r = await post(rig, '/training-jobs', { samples: 'none', head: { type: 'softmax', epochs: 1 }, ...request });
      const text = JSON.stringify(r.body);
      const refused = r.status === 400 && rule.test(String(r.body.message)) && !text.includes(rig.canary) && !/root:x:0:0/.test(text);
      return { refused, outcome: `HTTP ${r.status}: ${String(r.body.message).slice(0, 160)}` };
    },
  };
}

/** A job the hub accepts as written but the worker must refuse (a link out of the root), or fail without quoting the file. */
function jobRunAttack(name: string, setup: (rig: Rig) => string, expected: RegExp): Attack {
  return {
    name,
    async run(rig) {
      const dataset = setup(rig);
      const created = await post(rig, '/training-jobs', { base: { dataset }, backbone: 'nsfw-mobilenet-v2', samples: 'none', head: { type: 'softmax', epochs: 1 } });
      // The hub refuses at creation what it can see is outside the roots (links resolved); the worker checks again.
      if (created.status !== 201) {
        const message = String(created.body.message);
        return { refused: created.status === 400 && expected.test(message) && !JSON.stringify(created.body).includes(rig.canary), outcome: `refused at creation: HTTP ${created.status} ${message.slice(0, 160)}` };
      }
      const id = created.body.id as number;
      const job = await eventually(
        async () => {
          const j = await json(await hubFetch(`${rig.url}/training-jobs/${id}`));
          return j.status === 'failed' || j.status === 'done' ? j : undefined;
        },
        120_000,
        `job ${id} to end`,
      );
      // Every answer about the job, as an API caller sees it: none may carry the file's contents.
      const answers = JSON.stringify([job, await json(await hubFetch(`${rig.url}/training-jobs`))]);
      const leaked = answers.includes(rig.canary);
      const refused = job.status === 'failed' && expected.test(String(job.error)) && !leaked;
      return { refused, outcome: `job ${id} ${String(job.status)}: ${String(job.error).slice(0, 160)}${leaked ? ' — LEAKED the file contents' : ''}` };
    },
  };
}

/** Upload `body` to POST /models with node:http (it reads an early answer while still sending); the status, or the error. */
function upload(url: string, body: Buffer, apiKey: string): Promise<{ status: number; message: string; sentMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const req = request(`${url}/models`, { method: 'POST', headers: { 'content-type': 'application/gzip', 'content-length': body.length, 'x-api-key': apiKey } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let message = text;
        try {
          message = String((JSON.parse(text) as { message?: unknown }).message);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, message, sentMs: Date.now() - started });
      });
    });
    req.on('error', reject);
    // Written in 1 MB pieces: an answer that comes early ends the upload (EPIPE/ECONNRESET after it are expected).
    let offset = 0;
    const pump = () => {
      while (offset < body.length) {
        const piece = body.subarray(offset, offset + 1024 * 1024);
        offset += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

const gzipBomb: Attack = {
  name: 'gzip bomb upload (100 MB of gzip that would inflate to ~100 GB)',
  async run(rig) {
    // Concatenated gzip members of 16 MiB of zeros each (~16 KB apiece): gunzip reads them as one stream.
    const member = gzipSync(Buffer.alloc(16 * 1024 * 1024));
    const bomb = Buffer.concat(Array.from({ length: Math.ceil((100 * 1024 * 1024) / member.length) }, () => member));
    const before = metricSum(await (await hubFetch(`${rig.url}/metrics`)).text(), 'shelfsight_models_refused_total', { reason: 'inflated-too-large' });
    // The event loop stays free: /health answers quickly all the while.
    let worstHealthMs = 0;
    let uploading = true;
    const probe = (async () => {
      while (uploading) {
        const s = Date.now();
        await fetch(`${rig.url}/health`).then((r) => r.arrayBuffer()).catch(() => undefined);
        worstHealthMs = Math.max(worstHealthMs, Date.now() - s);
        await sleep(50);
      }
    })();
    const r = await upload(rig.url, bomb, TEST_ADMIN_KEY).catch((e: Error) => ({ status: 0, message: e.message, sentMs: 0 }));
    uploading = false;
    await probe;
    const after = metricSum(await (await hubFetch(`${rig.url}/metrics`)).text(), 'shelfsight_models_refused_total', { reason: 'inflated-too-large' });
    const refused = r.status === 413 && after === before + 1 && worstHealthMs < 2000;
    return { refused, outcome: `${(bomb.length / 1e6).toFixed(0)} MB body: HTTP ${r.status} in ${r.sentMs} ms (${r.message.slice(0, 120)}); counted ${after - before}; slowest /health meanwhile ${worstHealthMs} ms` };
  },
};

const lockoutIsolation: Attack = {
  name: 'auth-failure lockout behind a proxy (TRUST_PROXY=loopback): one client guessing keys locks out only itself',
  async run(rig) {
    const from = (ip: string, key: string) => fetch(`${rig.url}/devices`, { headers: { 'x-api-key': key, 'x-forwarded-for': ip } }).then((r) => r.status);
    const guesses: number[] = [];
    for (let i = 0; i < 12; i++) guesses.push(await from('203.0.113.66', `shk_guess${i}_${randomBytes(8).toString('hex')}`));
    const attackerWithRealKey = await from('203.0.113.66', TEST_ADMIN_KEY);
    const honest = await from('198.51.100.7', TEST_ADMIN_KEY);
    const locked = guesses.slice(-3).every((s) => s === 429) && attackerWithRealKey === 429;
    return { refused: locked && honest === 200, outcome: `guesses from 203.0.113.66: ${guesses.join(',')}; then its real key ${attackerWithRealKey}; another client behind the same proxy: ${honest}` };
  },
};

// ---------------------------------------------------------------- database dump

/** Private key material in a pg_dump of the hub's database: PEM blocks, PKCS8 DER (base64/hex), and the hub's own key bytes. */
async function privateKeysInDump(rig: Rig): Promise<{ count: number; looseFiles: string[]; detail: string }> {
  const url = new URL(rig.sut.db.url);
  const { stdout } = await promisify(execFile)('pg_dump', ['--no-owner', '--data-only', '-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username) || 'postgres', url.pathname.slice(1)], {
    env: { ...process.env, PGPASSWORD: decodeURIComponent(url.password) },
    maxBuffer: 512 * 1024 * 1024,
  });
  const patterns: Array<[string, RegExp]> = [
    ['PEM private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
    ['Ed25519 PKCS8 DER, base64', /MC4CAQAwBQYDK2Vw/],
    ['Ed25519 PKCS8 DER, hex', /302e020100300506032b6570/i],
  ];
  // The raw seeds of every private key the hub holds in DATA_DIR (release key, demo root), in any encoding.
  const keyFiles = listFiles(rig.dataDir).filter((f) => /\.pem$/.test(f));
  for (const f of keyFiles) {
    try {
      const der = createPrivateKey(readFileSync(f)).export({ format: 'der', type: 'pkcs8' });
      const seed = der.subarray(der.length - 32);
      for (const [enc, s] of [['hex', seed.toString('hex')], ['base64', seed.toString('base64').slice(0, 40)], ['base64url', seed.toString('base64url').slice(0, 40)]] as const) {
        patterns.push([`${f.slice(rig.dataDir.length + 1)} seed (${enc})`, new RegExp(s.replace(/[+/]/g, (c) => `\\${c}`))]);
      }
    } catch {
      // not a private key file
    }
  }
  // The dump is of the hub's database: its migrations table is there (else nothing was checked).
  if (!/COPY public\._?\w*migrations/.test(stdout)) return { count: -1, looseFiles: [], detail: `the dump holds no migrations table: not the hub's database (${stdout.length} bytes)` };
  // The download-token secret is its own secret, in DATA_DIR only.
  const tokenSecret = join(rig.dataDir, 'download-token-secret');
  if (existsSync(tokenSecret)) {
    const secret = readFileSync(tokenSecret, 'utf8').trim();
    if (secret.length >= 16) patterns.push(['download-token secret', new RegExp(secret.slice(0, 40).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))]);
  }
  const found = patterns.filter(([, re]) => re.test(stdout)).map(([what]) => what);
  // Every secret file the hub generated is readable by its owner only.
  const loose = [...keyFiles, ...(existsSync(tokenSecret) ? [tokenSecret] : [])].filter((f) => (statSync(f).mode & 0o077) !== 0).map((f) => f.slice(rig.dataDir.length + 1));
  return {
    count: found.length,
    looseFiles: loose,
    detail: `${(stdout.length / 1e3).toFixed(0)} KB dump, ${keyFiles.length} key files and the download-token secret from DATA_DIR looked for${found.length ? `; FOUND ${found.join(', ')}` : ''}${loose.length ? `; readable by others: ${loose.join(', ')}` : ''}`,
  };
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'pgdata' && e.name !== 'blobs') out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------- the attacks

const ATTACKS: Attack[] = [
  jobPathAttack('job dataset path traversal (../../etc/passwd)', { base: { dataset: '../../../../etc/passwd' } }, /'\.\.' is not allowed/),
  jobPathAttack('job dataset outside the roots (/etc/passwd)', { base: { dataset: '/etc/passwd' } }, /outside TRAINING_DATASET_ROOTS/),
  jobPathAttack('job dataset read from /proc (/proc/self/environ)', { base: { dataset: '/proc/self/environ' } }, /\/proc/),
  jobPathAttack('job backbone read from /proc (/proc/self/root/etc)', { base: { dataset: 'x.csv' }, backbone: '/proc/self/root/etc' }, /\/proc/),
  jobPathAttack('job backbone fetched from a URL (cloud metadata)', { base: { dataset: 'x.csv' }, backbone: 'http://169.254.169.254/latest/meta-data/' }, /URLs are not allowed/),
  jobRunAttack(
    'job dataset that is a symlink out of the root to /proc/self/environ',
    (rig) => {
      symlinkSync('/proc/self/environ', join(rig.dataDir, 'datasets', 'innocent.csv'));
      return 'innocent.csv';
    },
    /leads to \/proc/,
  ),
  jobRunAttack(
    'job dataset that is not a CSV (its first line must not be echoed)',
    (rig) => {
      writeFileSync(join(rig.dataDir, 'datasets', 'notes.csv'), `${rig.canary}\nsecond line\n`);
      return 'notes.csv';
    },
    /expected a CSV header/,
  ),
  gzipBomb,
  lockoutIsolation,
];

/** TRUST_ONLY=inputs,registry,fleet runs only those sections (while working on one); CI runs all. */
const want = (section: string) => !process.env.TRUST_ONLY || process.env.TRUST_ONLY.split(',').includes(section);

/** Attacks of the issue whose defence has not landed yet: reported as not built, not counted as refused. */
const NOT_BUILT: string[] = [];

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-trust-'));
  const dataDir = join(work, 'hub');
  mkdirSync(join(dataDir, 'datasets'), { recursive: true });
  const canary = `TRUST_CANARY_${randomBytes(12).toString('hex')}`;
  // The worker child inherits the environment: its /proc/self/environ holds the canary.
  process.env.TRUST_CANARY = canary;
  log('starting the hub (PostgreSQL, embedded broker, training worker child)');
  const sut = await startTestHub('postgres', 'aedes', {
    DATA_DIR: dataDir,
    TRAINING_WORKER: 'child',
    // The product's defaults for job paths (test hubs allow the temporary folder).
    TRAINING_DATASET_ROOTS: join(dataDir, 'datasets'),
    // ...and the workspace's reference backbone, which the poisoned-embeddings job runs on.
    TRAINING_BACKBONE_ROOTS: `${join(dataDir, 'backbones')},${dirname(REFERENCE_BACKBONE)}`,
    TRUST_PROXY: 'loopback',
    AUTH_FAILURES_PER_MINUTE: '5',
    MODEL_UPLOAD_MAX_INFLATED_BYTES: String(64 * 1024 * 1024),
    ROLLOUT_TICK_MS: '250',
  });
  const rig: Rig = { sut, url: sut.hub.httpUrl, dataDir, work, canary, counters: { released_regressions: 0, devices_left_on_halted_version: 0 } };
  const results: AttackResult[] = [];
  let dump: { count: number; looseFiles: string[]; detail: string } = { count: -1, looseFiles: [], detail: 'not run' };
  try {
    for (const attack of want('inputs') ? ATTACKS : []) {
      if ('notBuilt' in attack) {
        results.push({ name: attack.name, outcome: `not built: ${attack.notBuilt}`, refused: undefined });
      } else {
        log(`attack: ${attack.name}`);
        try {
          const r = await attack.run(rig);
          results.push({ name: attack.name, ...r });
        } catch (err) {
          results.push({ name: attack.name, outcome: `harness error: ${(err as Error).message.slice(0, 300)}`, refused: false });
        }
      }
      const last = results[results.length - 1]!;
      process.stdout.write(`${last.refused === undefined ? 'NOT BUILT' : last.refused ? 'refused  ' : 'NOT REFUSED'} | ${last.name} | ${last.outcome}\n`);
    }
    const print = (r: AttackResult) => process.stdout.write(`${r.refused === undefined ? 'NOT BUILT' : r.refused ? 'refused  ' : 'NOT REFUSED'} | ${r.name} | ${r.outcome}\n`);
    const record = (r: AttackResult) => {
      results.push(r);
      print(r);
    };
    const section = async (what: string, run: () => Promise<void>) => {
      try {
        await run();
      } catch (err) {
        record({ name: what, refused: false, outcome: `harness error: ${(err as Error).message.slice(0, 300)}` });
      }
    };
    if (want('registry')) await section('registry attacks', () => gateAttacks(sut, log, rig.counters, (r: FleetAttackResult) => record(r)));
    if (want('fleet')) await section('fleet attacks', () => fleetAttacks(sut, work, log, rig.counters, (r: FleetAttackResult) => record(r)));
    for (const name of NOT_BUILT) record({ name, refused: undefined, outcome: 'not built yet' });
    dump = await privateKeysInDump(rig);
    log(`database dump: ${dump.detail}`);
  } finally {
    await sut.stop();
    delete process.env.TRUST_CANARY;
    rmSync(work, { recursive: true, force: true });
  }
  const built = results.filter((r) => r.refused !== undefined);
  const summary = {
    attacks: results.length,
    refused: built.filter((r) => r.refused).length,
    not_refused: built.filter((r) => !r.refused).map((r) => r.name),
    not_built: results.filter((r) => r.refused === undefined).map((r) => r.name),
    released_regressions: rig.counters.released_regressions,
    devices_left_on_halted_version: rig.counters.devices_left_on_halted_version,
    private_keys_in_database_dump: dump.count,
    secret_files_readable_by_others: dump.looseFiles.length,
    seconds: +((Date.now() - t0) / 1000).toFixed(1),
  };
  const ok = summary.not_refused.length === 0 && summary.released_regressions === 0 && summary.devices_left_on_halted_version === 0 && summary.private_keys_in_database_dump === 0 && summary.secret_files_readable_by_others === 0;
  process.stdout.write(`${JSON.stringify({ ok, ...summary })}\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`trust: FAILED ${(err as Error).stack ?? String(err)}\n`);
    process.stdout.write(`${JSON.stringify({ ok: false, error: (err as Error).message })}\n`);
    process.exit(1);
  },
);
