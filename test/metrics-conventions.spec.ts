import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { renderShelfPhoto } from '@shelfsight/vision';
import { agentConfig, StandInClassifier, startAgent, type AgentHandle } from '@shelfsight/agent';
import { eventually, getJson, hubFetch, startTestHub, type TestHub } from './support/test-hub';

/**
 * Prometheus' own linter (`promtool check metrics`, Debian's `prometheus` package; .ci/run
 * installs it) over the hub's and a real agent's /metrics after some real traffic: base
 * units, `_total` counters, help text... Any finding fails the test, with promtool's words.
 */
function promtoolCheck(exposition: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error('promtool not found: apt-get install prometheus (.ci/run does)'));
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, output: `${stdout}${stderr}`.trim() });
    });
    child.stdin!.end(exposition);
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('metrics follow Prometheus conventions (promtool check metrics)', () => {
  let sut: TestHub;
  let agent: AgentHandle | undefined;
  let tmp: string;
  let agentPort: number;

  beforeAll(async () => {
    sut = await startTestHub('postgres', 'aedes');
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'metrics-conventions-'));
    const frames = path.join(tmp, 'frames');
    await fsp.mkdir(frames);
    await fsp.writeFile(path.join(frames, 'A-01-1-A_0.jpg'), await renderShelfPhoto('milk', 7));
    agentPort = await freePort();
    const site = `promtool-${randomBytes(3).toString('hex')}`;
    const config = agentConfig({ deviceId: `promtool-${randomBytes(3).toString('hex')}`, site, mqttUrl: sut.hub.mqttUrl, framesDir: frames, stateDir: path.join(tmp, 'state'), pollMs: 50, settleMs: 100, httpPort: agentPort });
    agent = await startAgent(config, { classifier: new StandInClassifier(), logger: silentLogger });
    await agent.idle(30_000);
    // The detection reached the hub: its ingest counters and commit histogram have samples.
    await eventually(async () => ((await getJson<{ items: unknown[] }>(`${sut.hub.httpUrl}/detections?site=${site}&limit=10`)).body.items.length > 0 ? true : undefined), 30_000, 'the detection stored');
  }, 120_000);
  afterAll(async () => {
    await agent?.stop();
    await sut?.stop();
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
  });

  it("finds nothing in the hub's /metrics", async () => {
    const res = await hubFetch(`${sut.hub.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('shelfsight_detections_stored_total');
    expect(await promtoolCheck(text)).toEqual({ code: 0, output: '' });
  });

  it("finds nothing in the agent's /metrics", async () => {
    const res = await fetch(`http://127.0.0.1:${agentPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/_agent_/);
    expect(await promtoolCheck(text)).toEqual({ code: 0, output: '' });
  });

  it('reports a finding when there is one (the check is live)', async () => {
    const bad = '# HELP shelfsight_commit_duration_ms commit time\n# TYPE shelfsight_commit_duration_ms gauge\nshelfsight_commit_duration_ms 3\n';
    const result = await promtoolCheck(bad);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('shelfsight_commit_duration_ms metric names should not contain abbreviated units');
  });
});
