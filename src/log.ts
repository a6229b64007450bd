/** The process logger: pino, JSON lines on stdout (or stderr for CLI commands). */
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(level: string, destination: 1 | 2 = 1): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: destination, sync: false }));
}
