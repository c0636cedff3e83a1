/**
 * The client's state and its detail line (client.ts) turned into what a person watching needs: a short
 * title and one or two sentences, shown over the video. The detail texts come from real failures (the rover
 * hanging up, ICE giving up, the server refusing the link), so they are matched here, not re-invented.
 */
import type { ViewerState } from './client.js';

export type Tone = 'info' | 'warning' | 'error';

export interface Situation {
  tone: Tone;
  title: string;
  body: string;
}

/** Badge words for each state (the header and every tile). */
export const STATE_LABELS: Record<ViewerState, string> = {
  offline: 'Rover offline',
  waiting: 'Rover online',
  connecting: 'Connecting…',
  live: 'Live',
  failed: 'Failed',
};

export interface FeedCondition {
  state: ViewerState;
  /** client.stateDetail: empty until the server has answered once. */
  detail: string;
  /** Whether this page asked for video (Connect pressed, or ?autoconnect=1). */
  watching: boolean;
}

/** Before the first answer from the server the client says "offline" with no detail: we do not know yet. */
export function presenceUnknown({ state, detail }: FeedCondition): boolean {
  return state === 'offline' && detail === '';
}

/** The texts explainRefusal (client.ts) gives for a refused viewer link, and the client's damaged-link text. */
const ACCESS_REFUSED = /viewer link|link has expired|for a different rover|not set up for viewers|may not show this rover|link is damaged/i;
/** ICE found no path (client.ts onCallFailed), or relay-only without a relay (acceptOffer). */
const NO_NETWORK_PATH = /no video path|no direct network path|only allowed through a TURN relay/i;
const RETRY = /\s*Asking again in (\d+) s…?$/;

function sentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  const capital = trimmed[0]!.toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/** What to show over the video for this condition; null while video plays (nothing to cover it with). */
export function describeCondition(condition: FeedCondition): Situation | null {
  const { state, detail, watching } = condition;
  if (state === 'live') return null;
  if (presenceUnknown(condition)) return { tone: 'info', title: 'Connecting…', body: 'Checking whether the rover is online.' };

  if (state === 'failed') {
    if (NO_NETWORK_PATH.test(detail)) return { tone: 'error', title: 'No network path to the rover', body: sentence(detail) };
    if (ACCESS_REFUSED.test(detail)) return { tone: 'error', title: 'Access denied', body: sentence(detail) };
    if (/has no camera "/.test(detail)) return { tone: 'error', title: 'Camera not found', body: `${sentence(detail)} Pick one of its cameras.` };
    if (/server refused this viewer/.test(detail)) return { tone: 'error', title: 'Refused by the server', body: `${sentence(detail)} Reloading the page may help after an update.` };
    return { tone: 'error', title: 'Video failed', body: sentence(detail) || 'Reload the page to try again.' };
  }

  if (state === 'offline') {
    return {
      tone: 'info',
      title: 'Rover offline',
      body: watching
        ? 'The rover is not connected. Video starts by itself as soon as it comes online.'
        : 'The rover is not connected. This page updates by itself when it comes online.',
    };
  }

  const ended = /^the rover ended the call: (.*)$/.exec(detail);
  if (ended) {
    const retry = RETRY.exec(ended[1]!);
    const reason = retry ? ended[1]!.slice(0, retry.index) : ended[1]!;
    const retrying = retry ? ` Trying again in ${retry[1]} s…` : '';
    if (/camera unavailable/.test(reason)) {
      return {
        tone: 'warning',
        title: 'Camera unavailable',
        body: `The rover reports that this camera is not working (unplugged, busy or restarting).${retrying}`,
      };
    }
    return { tone: 'warning', title: 'The rover ended the call', body: `${sentence(reason)}${retrying}` };
  }

  if (state === 'waiting') {
    return watching
      ? { tone: 'info', title: 'Rover online', body: 'Asking the rover for video…' }
      : { tone: 'info', title: 'Rover online', body: 'Press Connect to watch.' };
  }

  // connecting
  if (/reconnecting to the server|cannot reach the server/.test(detail)) {
    return { tone: 'warning', title: 'Reconnecting…', body: `${sentence(detail)} Check this device's network connection.` };
  }
  if (/interrupted/.test(detail)) return { tone: 'warning', title: 'Connection interrupted', body: 'Trying to recover…' };
  return { tone: 'info', title: 'Connecting…', body: sentence(detail) };
}
