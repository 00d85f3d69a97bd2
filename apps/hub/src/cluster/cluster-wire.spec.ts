import { decodePayload, encodeBatch, fitsOneNotify, MAX_PAYLOAD_BYTES, type ClusterMessage } from './cluster-wire';

const msg = (i: number, pad = 0): ClusterMessage => ({ kind: 'event', body: { n: 'rollout', d: { id: `ro_${i}`, pad: 'x'.repeat(pad) } } });

describe('cluster wire', () => {
  it('packs a batch into few payloads, each under the NOTIFY limit, in order', () => {
    const messages = Array.from({ length: 300 }, (_, i) => msg(i, 40));
    const sut = encodeBatch('replica-a', messages);
    expect(sut.oversize).toEqual([]);
    expect(sut.payloads.length).toBeGreaterThan(1);
    expect(sut.payloads.length).toBeLessThan(10);
    for (const p of sut.payloads) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    const back = sut.payloads.flatMap((p) => decodePayload('replica-b', p).messages);
    expect(back).toEqual(messages);
  });

  it('counts bytes, not characters (multi-byte text near the limit)', () => {
    const body = { n: 'device', d: { id: 'é'.repeat(3960) } }; // 7,920 bytes as UTF-8, 3,960 characters
    expect(fitsOneNotify('a', { kind: 'event', body })).toBe(false);
    const sut = encodeBatch('a', [{ kind: 'event', body }, msg(1)]);
    expect(sut.oversize).toHaveLength(1);
    expect(sut.payloads).toHaveLength(1);
    expect(decodePayload('b', sut.payloads[0]!).messages).toEqual([msg(1)]);
  });

  it('keeps a replica from hearing itself', () => {
    const { payloads } = encodeBatch('replica-a', [msg(1)]);
    expect(decodePayload('replica-a', payloads[0]!)).toEqual({ origin: 'replica-a', messages: [] });
    expect(decodePayload('replica-b', payloads[0]!).messages).toEqual([msg(1)]);
  });

  it('refuses payloads that are not ours with a clear error', () => {
    expect(() => decodePayload('a', 'not json')).toThrow('not JSON');
    expect(() => decodePayload('a', '{"v":2,"o":"b","m":[]}')).toThrow('malformed');
    expect(() => decodePayload('a', '{"v":1,"o":"b","m":[{"b":1}]}')).toThrow('malformed');
  });

  it('sends nothing for an empty batch', () => {
    expect(encodeBatch('a', [])).toEqual({ payloads: [], oversize: [] });
  });
});
