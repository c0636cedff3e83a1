/**
 * Can this browser play a rover's video at all? Checked before any client is made, so an old or locked-down
 * browser gets a sentence saying what is missing instead of a script error and a black box.
 */

/** The browser features the viewer needs, each with the words a person would recognise. */
const REQUIRED_FEATURES: { global: string; name: string }[] = [
  { global: 'RTCPeerConnection', name: 'WebRTC (RTCPeerConnection)' },
  { global: 'WebSocket', name: 'WebSockets' },
  { global: 'MediaStream', name: 'MediaStream' },
];

/** Names of the required features this browser lacks (empty when it has everything). */
export function missingBrowserFeatures(scope: object = globalThis): string[] {
  const globals = scope as Record<string, unknown>;
  return REQUIRED_FEATURES.filter((feature) => typeof globals[feature.global] !== 'function').map((feature) => feature.name);
}

export function unsupportedBrowserMessage(missing: string[]): { title: string; body: string } {
  const list = missing.length === 1 ? missing[0]! : `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]!}`;
  return {
    title: 'This browser cannot show live video',
    body:
      `It lacks ${list}. Open this page in a current Chrome, Edge, Firefox or Safari (iPhone and iPad: iOS 15 or later). ` +
      'If it is one of those, WebRTC may be switched off by a privacy setting or an extension: allow it for this site.',
  };
}
