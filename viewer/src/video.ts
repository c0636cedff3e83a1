/** Attach a call's stream to a <video> only when it changed (re-assigning restarts playback). */
export function showStream(video: HTMLVideoElement, stream: MediaStream | null): void {
  if (video.srcObject === stream) return;
  video.srcObject = stream;
  if (stream) {
    void video.play().catch(() => {
      // Autoplay needs a muted element; ours are muted, so this only happens in odd embeddings.
    });
  }
}
