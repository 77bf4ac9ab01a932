/** Structured logging: one line per event, human-readable on a TTY, JSON lines when DISTILL_LOG_FORMAT=json. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): void;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'text' | 'json';
  sink?: LogSink;
  scope?: string;
}

function envLevel(): LogLevel {
  const v = process.env.DISTILL_LOG_LEVEL as LogLevel | undefined;
  return v && v in LEVELS ? v : 'info';
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? envLevel();
  const format = opts.format ?? (process.env.DISTILL_LOG_FORMAT === 'json' ? 'json' : 'text');
  // Logs go to stderr so stdout stays clean for machine-readable command output.
  const sink = opts.sink ?? { write: (l: string) => process.stderr.write(l + '\n') };
  const scope = opts.scope;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < LEVELS[level]) return;
    if (format === 'json') {
      sink.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, scope, msg, ...fields }));
    } else {
      const f =
        fields && Object.keys(fields).length
          ? ' ' +
            Object.entries(fields)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ')
          : '';
      sink.write(`${lvl === 'info' ? '' : lvl.toUpperCase() + ' '}${scope ? `[${scope}] ` : ''}${msg}${f}`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (s) => createLogger({ level, format, sink, scope: scope ? `${scope}:${s}` : s }),
  };
}
