import { pino } from 'pino';
import { relayChildLine } from './child-log';

describe(relayChildLine.name, () => {
  const relay = (line: string, level: pino.LevelWithSilent = 'info') => {
    const lines: string[] = [];
    const log = pino({ level, base: { pid: 1, component: 'hub' } }, { write: (s: string) => void lines.push(s) }).child({ context: 'TrainingWorker' });
    relayChildLine(line, log);
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  const workerRecord = { level: 'warn', time: '2026-12-08T00:00:00.000Z', pid: 4242, component: 'worker', msg: 'job failed', jobId: 'j1', err: { message: 'boom' } };

  it("logs a child's pino record as a record: its level, message and fields, its pid and component renamed", () => {
    const [out, ...more] = relay(JSON.stringify(workerRecord));
    expect(more).toEqual([]);
    expect(out).toMatchObject({ level: pino.levels.values.warn, pid: 1, component: 'hub', context: 'TrainingWorker', msg: 'job failed', jobId: 'j1', err: { message: 'boom' }, childPid: 4242, childComponent: 'worker' });
    expect(out!.time).not.toBe(workerRecord.time);
  });

  it('writes each key once (no duplicate pid, component or level in the JSON)', () => {
    const lines: string[] = [];
    const log = pino({ base: { pid: 1, component: 'hub' } }, { write: (s: string) => void lines.push(s) });
    relayChildLine(JSON.stringify(workerRecord), log);
    for (const key of ['pid', 'component', 'level', 'msg', 'time']) expect(lines[0]!.split(`"${key}":`).length).toBe(2);
  });

  it("honours the hub's level: a child's debug record is dropped at info", () => {
    expect(relay(JSON.stringify({ ...workerRecord, level: 'debug' }))).toEqual([]);
    expect(relay(JSON.stringify({ ...workerRecord, level: 20 }), 'debug')).toEqual([expect.objectContaining({ level: 20, msg: 'job failed' })]);
  });

  it('logs any other line as its text: a stack trace, JSON without a level, a broken record', () => {
    for (const line of ['    at Object.<anonymous> (/x.js:1:1)', '{"no":"level"}', '{"level":"info", broken', '[1,2]', '{"level":"loud"}']) {
      expect(relay(line)).toEqual([expect.objectContaining({ level: 30, msg: line })]);
    }
    expect(relay('   ')).toEqual([]);
  });
});
