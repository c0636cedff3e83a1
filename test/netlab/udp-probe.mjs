#!/usr/bin/env node
// Tiny UDP probe for the netlab tests. Prints JSON lines.
//
//   server <host> <port>[,<port>...]
//     Binds one socket per port; prints {"ready":true,...}. Every datagram is logged as {"recv":...} and
//     answered from the same socket with what the server saw: {"id","seenFrom","seenPort","via"}.
//     A request carrying {"pokeFrom": <port>} also makes the socket bound to that port send an unsolicited
//     {"unsolicited":true,...} datagram to the same observed address/port (NAT filtering test).
//
//   client <json>
//     json = {"targets":[{"host","port","pokeFrom"?}], "waitMs"?: 1000, "bind"?: port}
//     One socket sends a request to every target (3 times, 100 ms apart), collects what comes back for
//     waitMs, prints one JSON result {"localPort","replies":[...],"unsolicited":[...],"errors":[...]}.
import dgram from 'node:dgram';

const [mode, ...rest] = process.argv.slice(2);

if (mode === 'server') {
  const [host, portList] = rest;
  const ports = String(portList).split(',').map(Number);
  const sockets = new Map();
  await Promise.all(
    ports.map(
      (port) =>
        new Promise((resolve, reject) => {
          const socket = dgram.createSocket('udp4');
          socket.once('error', reject);
          socket.bind(port, host, () => resolve(undefined));
          sockets.set(port, socket);
        }),
    ),
  );
  for (const [port, socket] of sockets) {
    socket.on('message', (buffer, remote) => {
      let request = {};
      try {
        request = JSON.parse(buffer.toString());
      } catch {}
      console.log(JSON.stringify({ recv: { via: port, from: remote.address, fromPort: remote.port, request } }));
      const reply = { id: request.id, seenFrom: remote.address, seenPort: remote.port, via: port };
      socket.send(JSON.stringify(reply), remote.port, remote.address);
      if (request.pokeFrom !== undefined) {
        const poker = sockets.get(request.pokeFrom);
        poker?.send(JSON.stringify({ unsolicited: true, id: request.id, via: request.pokeFrom }), remote.port, remote.address);
      }
    });
  }
  console.log(JSON.stringify({ ready: true, host, ports }));
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'client') {
  const { targets, waitMs = 1000, bind = 0 } = JSON.parse(rest[0] ?? '{}');
  const socket = dgram.createSocket('udp4');
  const replies = new Map();
  const unsolicited = [];
  const errors = [];
  socket.on('error', (error) => errors.push(String(error.code ?? error.message)));
  socket.on('message', (buffer, remote) => {
    let message = {};
    try {
      message = JSON.parse(buffer.toString());
    } catch {}
    const entry = { ...message, from: remote.address, fromPort: remote.port };
    if (message.unsolicited) unsolicited.push(entry);
    else if (message.id !== undefined && !replies.has(message.id)) replies.set(message.id, entry);
  });
  await new Promise((resolve) => socket.bind(bind, resolve));
  const localPort = socket.address().port;
  for (let round = 0; round < 3; round++) {
    targets.forEach((target, id) => {
      if (replies.has(id)) return;
      const payload = JSON.stringify({ id, ...(target.pokeFrom !== undefined ? { pokeFrom: target.pokeFrom } : {}) });
      socket.send(payload, target.port, target.host, (error) => {
        if (error) errors.push(`${target.host}:${target.port} ${error.code ?? error.message}`);
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  const dedupedUnsolicited = [...new Map(unsolicited.map((u) => [`${u.id}/${u.fromPort}`, u])).values()];
  console.log(JSON.stringify({ localPort, replies: targets.map((_, id) => replies.get(id) ?? null), unsolicited: dedupedUnsolicited, errors: [...new Set(errors)] }));
  socket.close();
} else {
  console.error('usage: udp-probe.mjs server <host> <ports> | client <json>');
  process.exit(2);
}
