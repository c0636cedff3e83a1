// Types for the parts of gstreamer-superficial (a native addon without bundled types) that we use.
declare module 'gstreamer-superficial' {
  export interface BusMessage {
    type: string;
    _src_element_name?: string;
    name?: string;
    message?: string;
    [key: string]: unknown;
  }
  export interface GstElement {
    /** appsrc only: queue one buffer (copied). */
    push?: (buffer: Buffer) => void;
    [property: string]: unknown;
  }
  export class Pipeline {
    constructor(description: string);
    play(): void;
    pause(): void;
    stop(): void;
    sendEOS(): void;
    forceKeyUnit(elementName: string, count: number): boolean;
    findChild(name: string): GstElement | null;
    pollBus(callback: (message: BusMessage) => void): void;
  }
  const gstreamer: { Pipeline: typeof Pipeline };
  export default gstreamer;
}
