/**
 * Minimal leveled logger for a headless process (journald, docker logs). One line per event,
 * `key=value` fields. Callers pass ids and states only: never SDP, candidates or secrets.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export function createLogger(level: LogLevel = 'info', base: LogFields = {}, write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const emit = (at: LogLevel, message: string, fields: LogFields = {}): void => {
    if (ORDER[at] < ORDER[level]) return;
    const all = { ...base, ...fields };
    const rendered = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    write(`${new Date().toISOString()} ${at.toUpperCase().padEnd(5)} ${message}${rendered ? ' ' + rendered : ''}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}

/**
 * A log-safe one-line summary of an error thrown by native code or a parser. libdatachannel appends the
 * offending value to some messages (`Invalid candidate address "…"`, `Unknown SDP fingerprint format: …`),
 * and SDP, candidates and credentials never go into logs: keep only the text before the first quote or
 * ": " after its fixed prefixes, at most 100 characters.
 */
export function errorSummary(error: unknown): string {
  let text: string;
  try {
    text = error instanceof Error ? String(error.message) : String(error);
  } catch {
    text = ''; // a hostile toString()
  }
  text = text.replace(/^(?:libdatachannel error[^:"]*: |SyntaxError: |IceServer config error: )+/, '');
  const summary = text.split(/"|: |\n/, 1)[0]!.trim().slice(0, 100);
  return summary || 'unknown error';
}
