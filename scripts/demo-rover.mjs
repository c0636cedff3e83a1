// A demo "rover program" for the local stack (`npm start`): it speaks the sender's local API (JSON lines
// on its Unix socket) the way a real robot program would — publishes status and a synthetic detection
// box, prints the drive commands it receives, and stops when told to. Real programs: README "Telemetry
// and control".
import { connect } from 'node:net';

/** Connect to the sender's API socket (retrying while the sender starts) and run the demo until closed. */
export function runDemoRover(socketPath, log = (line) => console.log(`[rover] ${line}`)) {
  let socket = null;
  let closed = false;
  let timer;
  let drive = { linear: 0, angular: 0 };
  let battery = 1;
  let t = 0;

  const publish = (message) => socket?.write(`${JSON.stringify(message)}\n`);
  const tick = () => {
    t += 1;
    battery = Math.max(0, battery - 0.0002);
    // A box circling the picture, labelled as what it is: the demo has no real detector.
    const angle = t / 20;
    publish({
      type: 'telemetry',
      detections: [{ label: 'demo', score: 0.9, box: [0.4 + 0.25 * Math.cos(angle), 0.4 + 0.25 * Math.sin(angle), 0.2, 0.2] }],
      status: { battery: Math.round(battery * 100) / 100, speed: drive.linear, turn: drive.angular, mode: drive.linear || drive.angular ? 'driving' : 'idle' },
    });
  };

  const open = () => {
    if (closed) return;
    const candidate = connect(socketPath);
    candidate.on('error', () => {
      if (!closed) setTimeout(open, 500);
    });
    candidate.on('connect', () => {
      socket = candidate;
      log('connected to the sender\'s local API');
      timer = setInterval(tick, 100);
    });
    let buffered = '';
    candidate.setEncoding('utf8');
    candidate.on('data', (chunk) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let message;
        try {
          message = JSON.parse(line);
        } catch {
          continue;
        }
        if (message.type === 'control' && message.command?.drive) {
          drive = message.command.drive;
          log(`drive linear=${drive.linear} angular=${drive.angular} (operator ${message.viewer})`);
        } else if (message.type === 'stop') {
          drive = { linear: 0, angular: 0 };
          log(`STOP (${message.reason})`);
        } else if (message.type === 'lease') {
          log(message.viewer ? `operator ${message.viewer} has control` : 'nobody has control');
        } else if (message.type === 'error') {
          log(`the sender refused a line: ${message.message}`);
        }
      }
    });
    candidate.on('close', () => {
      clearInterval(timer);
      socket = null;
      if (!closed) setTimeout(open, 500);
    });
  };
  open();
  return {
    close: () => {
      closed = true;
      clearInterval(timer);
      socket?.destroy();
    },
  };
}
