import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { MqttLimits } from './mqtt-limits';

describe(MqttLimits.name, () => {
  let server: Server;
  let peer: Socket;
  let accepted: Socket;

  beforeEach(async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const arrived = once(server, 'connection');
    peer = connect((server.address() as AddressInfo).port, '127.0.0.1');
    [accepted] = (await arrived) as [Socket];
  });

  afterEach(async () => {
    peer.destroy();
    accepted.destroy();
    await new Promise((r) => server.close(r));
  });

  it("bounds what is queued toward a hub that does not read: past hubQueueBytes its device detections are refused, nothing else and nobody else's", async () => {
    const sut = new MqttLimits({ maxPacketBytes: 1 << 20, ratePerS: 100, burst: 100, hubQueueBytes: 256 * 1024 });
    const conn = sut.wrap(accepted);
    conn.on('error', () => undefined); // torn down with the sockets
    peer.pause(); // the hub is behind: it takes nothing
    const detections = 'shelfsight/v1/devices/dev-1/detections';
    expect(sut.forwardRefused(conn, detections)).toBe(false); // not a hub connection yet
    sut.exempt(conn);
    expect(sut.forwardRefused(conn, detections)).toBe(false);
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < 64 && sut.queuedBytes(conn) < 512 * 1024; i++) {
      conn.write(chunk);
      await new Promise((r) => setImmediate(r));
    }
    expect(sut.queuedBytes(conn)).toBeGreaterThanOrEqual(256 * 1024);
    expect(sut.hubQueuedBytes()).toBe(sut.queuedBytes(conn));
    expect(sut.forwardRefused(conn, detections)).toBe(true);
    expect(sut.forwardRefused(conn, 'shelfsight/v1/devices/dev-1/birth')).toBe(false);
    // The hub reads again: the queue drains and detections flow.
    peer.resume();
    for (let i = 0; i < 200 && sut.queuedBytes(conn) > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sut.forwardRefused(conn, detections)).toBe(false);
  });
});
