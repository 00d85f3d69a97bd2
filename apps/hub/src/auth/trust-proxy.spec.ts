import { trustProxyValue } from './trust-proxy';

describe(trustProxyValue.name, () => {
  it('is off unless set', () => {
    expect(trustProxyValue(undefined)).toBe(false);
    expect(trustProxyValue('off')).toBe(false);
    expect(trustProxyValue('0')).toBe(false);
  });

  it('takes a hop count, or proxies by name, address and range', () => {
    expect(trustProxyValue('1')).toBe(1);
    expect(trustProxyValue('loopback')).toEqual(['loopback']);
    expect(trustProxyValue('loopback, 10.0.0.0/8, fd00::/8, 192.168.1.7')).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8', '192.168.1.7']);
  });

  it.each(['true', '*', 'proxy.example', '10.0.0.0/33', '10.0.0.1/8/1', '99'])('refuses %s with the reason', (s) => {
    expect(() => trustProxyValue(s)).toThrow(/./);
  });
});
