import { decodeClusterEvent, encodeClusterEvent } from './cluster-events';
import type { HubEvent } from './hub-events';

const rollout: HubEvent = { name: 'rollout', data: { id: 'ro_1', at: '2026-01-01T00:00:00.000Z' } };
const training = { name: 'training', data: { id: 42, status: 'running' } } as unknown as HubEvent;

describe('cluster events', () => {
  it('sends an event whole when it fits, and delivers it as it came', async () => {
    const wire = encodeClusterEvent(rollout, () => true, 'rollout:ro_1');
    expect(wire).toEqual({ n: 'rollout', d: rollout.data, c: 'rollout:ro_1' });
    expect(await decodeClusterEvent(JSON.parse(JSON.stringify(wire)), () => undefined)).toEqual({ event: rollout, coalesce: 'rollout:ro_1' });
    expect(await decodeClusterEvent(encodeClusterEvent(rollout, () => true), () => undefined)).toEqual({ event: rollout });
  });

  it('sends a large event as its name and id; the receiver reads it again through the loader', async () => {
    const wire = encodeClusterEvent(training, () => false);
    expect(wire).toEqual({ n: 'training', ref: '42' });
    const asked: string[] = [];
    const loaded = await decodeClusterEvent(wire, (name) => (name === 'training' ? async (id) => (asked.push(id), training.data) : undefined));
    expect(asked).toEqual(['42']);
    expect(loaded).toEqual({ event: training });
    // Gone by now: nothing to deliver.
    expect(await decodeClusterEvent(wire, () => async () => undefined)).toBeUndefined();
  });

  it('refuses what is not an event, and a reference nobody here can read', async () => {
    await expect(decodeClusterEvent({ n: 'unknown', d: {} }, () => undefined)).rejects.toThrow('not an event');
    await expect(decodeClusterEvent({ n: 'training', ref: '42' }, () => undefined)).rejects.toThrow('nothing here reads it again');
  });
});
