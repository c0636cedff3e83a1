/**
 * The Worker's ICE settings (browser RTCIceServer shape) → what libdatachannel takes.
 * node-datachannel refuses `{ urls, username, credential }` and mis-parses REST usernames (they contain ':')
 * in URL form, so TURN servers become its object form; STUN stays a URL.
 */
import type { IceServer as DataChannelIceServer, RelayType } from 'node-datachannel';
import { parseIceUrl, type IceConfig } from '../../protocol/index.js';

export type DataChannelIceEntry = string | DataChannelIceServer;

export interface DataChannelIce {
  iceServers: DataChannelIceEntry[];
  iceTransportPolicy: 'all' | 'relay';
  /** Entries that could not be used, with why (for one debug line; never includes credentials). */
  skipped: string[];
}

function relayTypeOf(scheme: 'turn' | 'turns', transport: 'udp' | 'tcp'): RelayType {
  if (scheme === 'turns') return 'TurnTls';
  return transport === 'tcp' ? 'TurnTcp' : 'TurnUdp';
}

/**
 * @param server   settings the Worker minted for this call
 * @param extra    the operator's own `--ice-server` URLs (libdatachannel URL syntax, passed through)
 * @param relayOnly the operator's `--relay-only`: forces relay even if the server allows direct paths
 */
export function toDataChannelIce(server: IceConfig, extra: readonly string[] = [], relayOnly = false): DataChannelIce {
  const iceServers: DataChannelIceEntry[] = [];
  const skipped: string[] = [];
  for (const entry of server.iceServers) {
    for (const url of entry.urls) {
      const parsed = parseIceUrl(url);
      if (!parsed) {
        skipped.push(`${url}: not a STUN/TURN URL`);
      } else if (parsed.scheme === 'stun') {
        // libdatachannel cannot parse a bracketed IPv6 host in a URL ("stun:[2001:db8::1]:3478" throws
        // when the peer connection is created): IPv6 STUN servers take the object form (no relayType = STUN).
        iceServers.push(parsed.host.includes(':') ? { hostname: parsed.host, port: parsed.port } : `stun:${parsed.host}:${parsed.port}`);
      } else if (parsed.scheme === 'stuns') {
        skipped.push(`${url}: STUN over TLS is not supported by libdatachannel`);
      } else if (entry.username === undefined || entry.credential === undefined) {
        skipped.push(`${url}: TURN without credentials`);
      } else {
        iceServers.push({
          hostname: parsed.host,
          port: parsed.port,
          username: entry.username,
          password: entry.credential,
          relayType: relayTypeOf(parsed.scheme, parsed.transport),
        });
      }
    }
  }
  iceServers.push(...extra);
  return { iceServers, iceTransportPolicy: relayOnly || server.iceTransportPolicy === 'relay' ? 'relay' : 'all', skipped };
}

/** True when the configuration can produce a relayed path at all. */
export function canRelay(ice: DataChannelIce): boolean {
  return ice.iceServers.some((entry) => (typeof entry === 'string' ? /^turns?:/.test(entry) : entry.relayType !== undefined));
}
