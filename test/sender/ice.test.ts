import { describe, expect, it } from 'vitest';
import { NO_ICE_SERVERS, parseIceUrl, type IceConfig } from '../../protocol/index.js';
import { canRelay, toDataChannelIce } from '../../sender/src/ice.js';

const minted: IceConfig = {
  iceServers: [
    { urls: ['stun:turn.example.com:3478'] },
    {
      urls: ['turn:turn.example.com:3478?transport=udp', 'turn:turn.example.com:3478?transport=tcp', 'turns:turn.example.com:5349?transport=tcp'],
      username: '1790000000:demo.rover.1a2b3c4d',
      credential: 'bWFjL3dpdGgvc2xhc2hlcys9',
    },
  ],
  iceTransportPolicy: 'all',
  expiresAt: 1_790_000_000_000,
};

describe('parseIceUrl (protocol)', () => {
  it.each([
    ['stun:stun.example.com', { scheme: 'stun', host: 'stun.example.com', port: 3478, transport: 'udp' }],
    ['stun:198.18.0.10:3479', { scheme: 'stun', host: '198.18.0.10', port: 3479, transport: 'udp' }],
    ['turn:[2001:db8::1]:3478?transport=tcp', { scheme: 'turn', host: '2001:db8::1', port: 3478, transport: 'tcp' }],
    ['turns:turn.example.com', { scheme: 'turns', host: 'turn.example.com', port: 5349, transport: 'tcp' }],
    ['stuns:stun.example.com:443', { scheme: 'stuns', host: 'stun.example.com', port: 443, transport: 'tcp' }],
  ])('%s', (url, expected) => {
    expect(parseIceUrl(url)).toEqual(expected);
  });

  it.each([
    'http://turn.example.com',
    'turn:',
    'turn:user:pass@turn.example.com', // credentials never travel in the URL
    'turn:turn.example.com:0',
    'turn:turn.example.com:65536',
    'turns:turn.example.com?transport=udp', // TLS is TCP
    'stun:stun.example.com?transport=udp', // STUN URLs take no transport
    'turn:turn.example.com?transport=sctp',
    'turn:bad host:3478',
  ])('refuses %s', (url) => {
    expect(parseIceUrl(url)).toBeNull();
  });
});

describe('toDataChannelIce', () => {
  it('turns REST credentials into the object form, one relay type per URL, STUN as a URL', () => {
    const ice = toDataChannelIce(minted);
    expect(ice).toEqual({
      iceServers: [
        'stun:turn.example.com:3478',
        { hostname: 'turn.example.com', port: 3478, username: '1790000000:demo.rover.1a2b3c4d', password: 'bWFjL3dpdGgvc2xhc2hlcys9', relayType: 'TurnUdp' },
        { hostname: 'turn.example.com', port: 3478, username: '1790000000:demo.rover.1a2b3c4d', password: 'bWFjL3dpdGgvc2xhc2hlcys9', relayType: 'TurnTcp' },
        { hostname: 'turn.example.com', port: 5349, username: '1790000000:demo.rover.1a2b3c4d', password: 'bWFjL3dpdGgvc2xhc2hlcys9', relayType: 'TurnTls' },
      ],
      iceTransportPolicy: 'all',
      skipped: [],
    });
    expect(canRelay(ice)).toBe(true);
  });

  it('appends the operator’s own servers; IPv6 STUN hosts take the object form (libdatachannel cannot parse [v6] URLs)', () => {
    const ice = toDataChannelIce({ ...NO_ICE_SERVERS, iceServers: [{ urls: ['stun:[2001:db8::1]:3478'] }] }, ['stun:stun.example.org:3478']);
    expect(ice.iceServers).toEqual([{ hostname: '2001:db8::1', port: 3478 }, 'stun:stun.example.org:3478']);
    expect(canRelay(ice)).toBe(false);
    expect(canRelay(toDataChannelIce(NO_ICE_SERVERS, ['turn:u:p@turn.example.org:3478']))).toBe(true);
  });

  it('relay-only comes from the server or from the operator; either one is enough', () => {
    expect(toDataChannelIce(minted).iceTransportPolicy).toBe('all');
    expect(toDataChannelIce(minted, [], true).iceTransportPolicy).toBe('relay');
    expect(toDataChannelIce({ ...minted, iceTransportPolicy: 'relay' }).iceTransportPolicy).toBe('relay');
  });

  it('skips what libdatachannel cannot use, and says why without leaking credentials', () => {
    const ice = toDataChannelIce({
      ...NO_ICE_SERVERS,
      iceServers: [{ urls: ['stuns:stun.example.com:443'] }, { urls: ['turn:turn.example.com:3478'] }],
    });
    expect(ice.iceServers).toEqual([]);
    expect(ice.skipped).toEqual(['stuns:stun.example.com:443: STUN over TLS is not supported by libdatachannel', 'turn:turn.example.com:3478: TURN without credentials']);
  });
});
