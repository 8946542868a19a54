import { EggConsoleLogger, type LoggerLevel } from 'egg-logger';

/** What the master and the workers log through; egg-logger's console logger by default. */
export interface Logger {
  debug(message: unknown, ...args: unknown[]): void;
  info(message: unknown, ...args: unknown[]): void;
  warn(message: unknown, ...args: unknown[]): void;
  error(message: unknown, ...args: unknown[]): void;
}

/** egg-logger's EggConsoleLogger: `YYYY-MM-DD HH:mm:ss,SSS LEVEL pid message`, ERROR to stderr. */
export function createConsoleLogger(level: string | undefined): Logger {
  const options = level ? { level: level.toUpperCase() as LoggerLevel } : {};
  return new EggConsoleLogger(options);
}
