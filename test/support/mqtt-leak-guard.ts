import { MqttClient } from 'mqtt';

/**
 * Jest setup for the suites that use MQTT: after a suite, no MQTT client it created may keep a
 * reconnect timer. A client left behind (a test that never ended it, a hub whose broker went
 * first) would fire its timer after Jest tore the suite's modules down and fail whichever suite
 * runs next in the same worker ("Right-hand side of 'instanceof' is not an object" in
 * MqttClient._reconnect). Each one found is named on stderr, so the test can be mended, and ended.
 */
const created = new Set<MqttClient>();
const connect = MqttClient.prototype.connect;
MqttClient.prototype.connect = function (this: MqttClient) {
  created.add(this);
  return connect.call(this);
};

afterAll(async () => {
  const left = [...created].filter((c) => !c.disconnected || c.reconnecting);
  created.clear();
  for (const client of left) {
    client.options.reconnectPeriod = 0;
    const state = client.reconnecting ? 'still reconnecting' : 'never ended';
    process.stderr.write(`mqtt-leak-guard: client ${client.options.clientId} was ${state} after the suite; ended\n`);
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }
});
