/**
 * The production coturn configuration (infra/coturn, started through its run script) refuses what it must:
 * expired or forged TURN credentials (401), and relaying toward loopback, private or link-local addresses
 * (403: the classic "TURN as a door into the internal network" attack). Credentials come from the Worker's
 * own minting code, so this also proves coturn accepts what the Worker hands out.
 * coturn runs in the NAT lab's `srv`; the client is coturn's turnutils_uclient behind the viewer's NAT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iceConfigFor, readIceSettings } from '../../worker/src/ice.js';
import { createLab, netnsForTests, type Lab, type LabProcess } from '../netlab/lab.js';
import { LAB_TURN_PORT, LAB_TURN_SECRET, LAB_TURNS_PORT, startLabCoturn } from './lab-stack.js';

const labAvailable = await netnsForTests('TURN server (coturn) tests');

const PEER_PORT = 3480;
const TTL_SECONDS = 600;

interface Credential {
  username: string;
  password: string;
}

function mint(secret: string, session: string, nowMs = Date.now()): Credential {
  const settings = readIceSettings({ TURN_URLS: 'turn:198.18.0.10:3478', TURN_SECRET: secret, TURN_TTL_SECONDS: String(TTL_SECONDS) });
  const turn = iceConfigFor(settings, session, nowMs).iceServers.find((server) => server.username !== undefined)!;
  return { username: turn.username!, password: turn.credential! };
}

describe.skipIf(!labAvailable)('coturn with the production conf', () => {
  let lab: Lab;
  let coturn: LabProcess;

  beforeAll(async () => {
    lab = await createLab({ nat: 'symmetric' });
    // --verbose only adds per-request log lines (e.g. "ALLOCATE processed, error 401"), which the tests read.
    coturn = await startLabCoturn(lab, ['--verbose']);
    // An echo peer on the lab's public network: the one place relaying is allowed to.
    const peer = lab.spawn('srv', 'turnutils_peer', ['-L', lab.addresses.srv, '-p', String(PEER_PORT)]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(peer.child.exitCode).toBeNull();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  /** Allocate with `credential`, send `messages` to `peer` through the relay; returns exit code and output. */
  async function relayThrough(credential: Credential, peer: string, extraArgs: string[] = []): Promise<{ code: number | null; output: string }> {
    const client = lab.spawn('viewer', 'turnutils_uclient', [
      '-v', '-X', '-c', '-n', '5', '-u', credential.username, '-w', credential.password,
      '-e', peer, '-r', String(PEER_PORT), ...extraArgs, lab.addresses.srv,
    ]);
    const timeout = setTimeout(() => void client.stop(), 20_000);
    const { code } = await client.exited;
    clearTimeout(timeout);
    return { code, output: client.lines.join('\n') };
  }

  /** coturn's own log says so (it writes with a delay when stdout is a pipe: poll briefly). */
  async function serverLogged(matches: (line: string) => boolean): Promise<boolean> {
    for (let waited = 0; waited < 3_000; waited += 100) {
      if (coturn.lines.some(matches)) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    console.log(coturn.lines.slice(-30).join('\n'));
    return false;
  }

  function serverRefusedUser(username: string, status: number): Promise<boolean> {
    return serverLogged((line) => line.includes(`user <${username}>`) && line.includes(`error ${status}`));
  }

  it('a credential minted by the Worker relays data both ways (the positive control)', async () => {
    const { code, output } = await relayThrough(mint(LAB_TURN_SECRET, 'lab.viewer.valid'), lab.addresses.srv);
    expect(output).toMatch(/tot_send_msgs=5, tot_recv_msgs=5/);
    expect(code).toBe(0);
  });

  it('the same over TLS (turns: on 5349, for networks that block UDP)', async () => {
    const { code, output } = await relayThrough(mint(LAB_TURN_SECRET, 'lab.viewer.tls'), lab.addresses.srv, [
      '-t', '-S', '-p', String(LAB_TURNS_PORT), '-F', 'ECDHE-ECDSA-AES128-GCM-SHA256',
    ]);
    expect(output).toMatch(/tot_recv_msgs=5/);
    expect(code).toBe(0);
  });

  it('an expired credential is refused with 401', async () => {
    // Minted with the right secret, but more than one TTL ago.
    const expired = mint(LAB_TURN_SECRET, 'lab.viewer.expired', Date.now() - (TTL_SECONDS + 60) * 1000);
    expect(Number(expired.username.split(':')[0]) * 1000).toBeLessThan(Date.now());
    const { code, output } = await relayThrough(expired, lab.addresses.srv);
    expect(code).not.toBe(0);
    expect(output).toMatch(/Cannot complete Allocation/);
    expect(await serverRefusedUser(expired.username, 401)).toBe(true);
  });

  it('a forged credential (signed with another secret) is refused with 401', async () => {
    const forged = mint('not-the-real-secret-0123456789', 'lab.viewer.forged');
    const { code, output } = await relayThrough(forged, lab.addresses.srv);
    expect(code).not.toBe(0);
    expect(output).toMatch(/Cannot complete Allocation/);
    expect(await serverRefusedUser(forged.username, 401)).toBe(true);
  });

  it('a username edited to extend its expiry is refused with 401 (the HMAC covers it)', async () => {
    const real = mint(LAB_TURN_SECRET, 'lab.viewer.edited');
    const [expiry, session] = real.username.split(':');
    const edited = { username: `${Number(expiry) + 86_400}:${session}`, password: real.password };
    const { code } = await relayThrough(edited, lab.addresses.srv);
    expect(code).not.toBe(0);
    expect(await serverRefusedUser(edited.username, 401)).toBe(true);
  });

  it.each([
    ['loopback', '127.0.0.1'],
    ['a private network (the rover LAN)', '10.200.1.2'],
    ['link-local (cloud metadata lives here)', '169.254.169.254'],
  ])('relaying toward %s is refused with 403', async (_label, peer) => {
    const credential = mint(LAB_TURN_SECRET, `lab.viewer.peer${peer.replaceAll('.', '-')}`);
    const { code, output } = await relayThrough(credential, peer);
    expect(output).toMatch(/error 403 \(Forbidden IP\)/);
    expect(output).not.toMatch(/tot_recv_msgs=[1-9]/);
    expect(code).not.toBe(0);
    // The allocation itself was fine (valid credential); only the permission toward that peer was refused.
    expect(await serverRefusedUser(credential.username, 403)).toBe(true);
  });

  it('listens where the conf says: 3478 and 5349 (TLS/DTLS), relays in its port range, no CLI or admin port', async () => {
    const portsOf = async (flags: string): Promise<number[]> => {
      const sockets = await lab.exec('srv', 'ss', [flags, 'sport != :' + PEER_PORT, 'and', 'sport != :' + (PEER_PORT + 1)]);
      return [...new Set([...sockets.matchAll(/198\.18\.0\.10:(\d+)/g)].map((match) => Number(match[1])))].sort();
    };
    expect(await portsOf('-Hlnt')).toEqual([LAB_TURN_PORT, LAB_TURNS_PORT]);
    // UDP: the listeners, plus relay sockets of live allocations, all inside min-port..max-port.
    const udp = await portsOf('-Hlnu');
    expect(udp.filter((port) => port < 49160 || port > 50999)).toEqual([LAB_TURN_PORT, LAB_TURNS_PORT]);
  });
});
