/**
 * ControlPanel: take or release control of the rover, and drive it — arrow keys / WASD on a keyboard, a
 * hold-to-drive pad on a touch screen. Commands are `{"drive": {"linear": -1..1, "angular": -1..1}}`
 * sent at DRIVE_HZ while a direction is held, and one zero command when it is let go (the rover's program
 * decides what they mean). Only shown when this viewer's link allows control.
 *
 * The lease belongs to one signaling connection, and commands travel on that connection's call: the panel
 * follows the client of the camera on screen, and carries control over (release, then request) when the
 * operator switches camera.
 */
import type { ControlStatus, RoverViewerClient } from './client.js';

const DRIVE_HZ = 10;
const KEYS: Record<string, [linear: number, angular: number]> = {
  ArrowUp: [1, 0],
  w: [1, 0],
  ArrowDown: [-1, 0],
  s: [-1, 0],
  ArrowLeft: [0, 1],
  a: [0, 1],
  ArrowRight: [0, -1],
  d: [0, -1],
};
const PAD: { label: string; name: string; vector: [number, number] }[] = [
  { label: '▲', name: 'Forward', vector: [1, 0] },
  { label: '◀', name: 'Turn left', vector: [0, 1] },
  { label: '■', name: 'Stop', vector: [0, 0] },
  { label: '▶', name: 'Turn right', vector: [0, -1] },
  { label: '▼', name: 'Reverse', vector: [-1, 0] },
];

export class ControlPanel {
  readonly element: HTMLElement;
  private readonly toggle: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly pad: HTMLElement;
  private readonly held = new Map<string, [number, number]>();
  private driveTimer: ReturnType<typeof setInterval> | undefined;
  private client: RoverViewerClient;
  private unsubscribe: () => void;

  constructor(client: RoverViewerClient) {
    this.client = client;
    this.element = document.createElement('section');
    this.element.className = 'control-panel';
    this.element.setAttribute('aria-label', 'Rover control');
    this.element.hidden = true;
    this.toggle = document.createElement('button');
    this.toggle.type = 'button';
    this.toggle.id = 'take-control';
    this.toggle.addEventListener('click', () => (this.client.control.holder === 'you' ? this.client.releaseControl() : this.client.requestControl()));
    this.status = document.createElement('span');
    this.status.id = 'control-status';
    this.status.className = 'detail';
    this.status.setAttribute('role', 'status');
    this.pad = document.createElement('div');
    this.pad.className = 'drive-pad';
    this.pad.hidden = true;
    for (const { label, name, vector } of PAD) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = label;
      button.setAttribute('aria-label', name);
      button.dataset['drive'] = name.toLowerCase().replace(/\s+/g, '-');
      // Hold to drive (pointer), click for keyboard users; letting go sends a stop.
      button.addEventListener('pointerdown', (event) => {
        button.setPointerCapture?.(event.pointerId);
        this.hold(`pad:${name}`, vector);
      });
      const release = (): void => this.letGo(`pad:${name}`);
      button.addEventListener('pointerup', release);
      button.addEventListener('pointercancel', release);
      button.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          this.hold(`pad:${name}`, vector);
        }
      });
      button.addEventListener('keyup', release);
      this.pad.append(button);
    }
    this.element.append(this.toggle, this.status, this.pad);
    this.unsubscribe = client.on('control', (status) => this.render(status));
    addEventListener('keydown', (event) => this.onKey(event, true));
    addEventListener('keyup', (event) => this.onKey(event, false));
    addEventListener('blur', () => this.releaseAll());
    this.render(client.control);
  }

  /** Follow another client (the camera on screen changed). */
  bind(client: RoverViewerClient): void {
    if (client === this.client) return;
    const wasDriving = this.client.control.holder === 'you';
    this.releaseAll();
    if (wasDriving) this.client.releaseControl();
    this.unsubscribe();
    this.client = client;
    this.unsubscribe = client.on('control', (status) => this.render(status));
    if (wasDriving) client.requestControl();
    this.render(client.control);
  }

  private render(status: ControlStatus): void {
    this.element.hidden = !status.canControl && status.detail === '';
    const mine = status.holder === 'you';
    this.element.dataset['holder'] = status.holder;
    this.toggle.textContent = mine ? 'Release control' : 'Take control';
    this.toggle.disabled = !status.canControl || status.holder === 'other';
    this.pad.hidden = !mine;
    const words = mine
      ? 'You are driving: arrow keys or WASD, Space to stop.'
      : status.holder === 'other'
        ? 'Another operator is driving; you are watching.'
        : status.canControl
          ? 'Nobody is driving.'
          : 'This link allows watching only.';
    this.status.textContent = status.detail && !/^you have control$/.test(status.detail) ? `${words} ${capitalize(status.detail)}.` : words;
    if (!mine) this.releaseAll();
  }

  private onKey(event: KeyboardEvent, down: boolean): void {
    if (this.client.control.holder !== 'you' || isTyping(event.target)) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === ' ' && down) {
      event.preventDefault();
      this.releaseAll();
      return;
    }
    const vector = KEYS[key];
    if (!vector) return;
    event.preventDefault();
    if (down) this.hold(`key:${key}`, vector);
    else this.letGo(`key:${key}`);
  }

  private hold(source: string, vector: [number, number]): void {
    if (this.client.control.holder !== 'you') return;
    this.held.set(source, vector);
    this.sendDrive();
    this.driveTimer ??= setInterval(() => this.sendDrive(), 1000 / DRIVE_HZ);
  }

  private letGo(source: string): void {
    if (!this.held.delete(source)) return;
    this.sendDrive();
    if (this.held.size === 0) this.stopTimer();
  }

  private releaseAll(): void {
    const wasDriving = this.held.size > 0;
    this.held.clear();
    this.stopTimer();
    if (wasDriving || this.client.control.holder === 'you') this.sendDrive();
  }

  private stopTimer(): void {
    clearInterval(this.driveTimer);
    this.driveTimer = undefined;
  }

  /** The sum of everything held (up + left = forward while turning), clamped to -1..1. */
  private sendDrive(): void {
    let linear = 0;
    let angular = 0;
    for (const [l, a] of this.held.values()) {
      linear += l;
      angular += a;
    }
    const clamp = (value: number): number => Math.max(-1, Math.min(1, value));
    this.client.sendControl({ drive: { linear: clamp(linear), angular: clamp(angular) } });
  }
}

function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
