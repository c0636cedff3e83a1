/**
 * Notices when the rover's own addresses change (Wi-Fi → cellular, DHCP renewal, a modem reconnecting).
 * Open sockets keep their old source address and die silently; waiting for heartbeats and ICE timeouts to
 * find out takes 30–45 s. Watching the addresses finds out within one poll.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

export type InterfaceReader = () => NodeJS.Dict<NetworkInterfaceInfo[]>;

/** A stable fingerprint of the non-loopback addresses (order-independent). */
export function addressFingerprint(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string {
  const addresses: string[] = [];
  for (const [name, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      // Link-local IPv6 addresses come and go with interfaces but carry no internet path.
      if (info.family === 'IPv6' && info.address.toLowerCase().startsWith('fe80:')) continue;
      addresses.push(`${name}/${info.address}`);
    }
  }
  return addresses.sort().join(',');
}

export class NetworkWatcher {
  private timer: NodeJS.Timeout | undefined;
  private fingerprint: string;

  constructor(
    private readonly onChange: (before: string, after: string) => void,
    private readonly intervalMs = 2_000,
    private readonly read: InterfaceReader = networkInterfaces,
  ) {
    this.fingerprint = addressFingerprint(read());
  }

  start(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Compare now (also called by the timer). Returns true when the addresses changed. */
  check(): boolean {
    const current = addressFingerprint(this.read());
    if (current === this.fingerprint) return false;
    const before = this.fingerprint;
    this.fingerprint = current;
    this.onChange(before, current);
    return true;
  }
}
