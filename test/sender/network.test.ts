import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { addressFingerprint, NetworkWatcher } from '../../sender/src/network.js';

function iface(address: string, family: 'IPv4' | 'IPv6' = 'IPv4', internal = false): NetworkInterfaceInfo {
  return { address, family, internal, netmask: '', mac: '00:00:00:00:00:00', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) } as NetworkInterfaceInfo;
}

describe('addressFingerprint', () => {
  it('ignores loopback and IPv6 link-local, and the order of interfaces', () => {
    const a = { lo: [iface('127.0.0.1', 'IPv4', true)], wlan0: [iface('192.168.1.20'), iface('fe80::1', 'IPv6')], wwan0: [iface('10.64.3.2')] };
    const b = { wwan0: [iface('10.64.3.2')], wlan0: [iface('fe80::99', 'IPv6'), iface('192.168.1.20')] };
    expect(addressFingerprint(a)).toBe(addressFingerprint(b));
    expect(addressFingerprint(a)).toBe('wlan0/192.168.1.20,wwan0/10.64.3.2');
  });
});

describe('NetworkWatcher', () => {
  it('reports a changed address once, with before and after', () => {
    let current: NodeJS.Dict<NetworkInterfaceInfo[]> = { eth0: [iface('10.200.1.2')] };
    const changes: Array<[string, string]> = [];
    const watcher = new NetworkWatcher((before, after) => changes.push([before, after]), 60_000, () => current);
    expect(watcher.check()).toBe(false);
    current = { eth0: [iface('10.200.1.3')] };
    expect(watcher.check()).toBe(true);
    expect(watcher.check()).toBe(false);
    expect(changes).toEqual([['eth0/10.200.1.2', 'eth0/10.200.1.3']]);
  });

  it('notices a link going away and coming back (Wi-Fi → cellular)', () => {
    let current: NodeJS.Dict<NetworkInterfaceInfo[]> = { wlan0: [iface('192.168.1.20')] };
    const changes: string[] = [];
    const watcher = new NetworkWatcher((_before, after) => changes.push(after), 60_000, () => current);
    current = {};
    watcher.check();
    current = { wwan0: [iface('10.64.3.2')] };
    watcher.check();
    expect(changes).toEqual(['', 'wwan0/10.64.3.2']);
  });
});
