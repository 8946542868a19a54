import os from 'node:os';
import type { FrameworkInfo } from './framework.js';
import type { Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';
import { redactOptions } from './redact.js';

export interface StartupLog {
  logger: Logger;
  /** The master's log(): INFO, or DEBUG in the local env. */
  log: (message: string, ...args: unknown[]) => void;
}

/** egg-cluster's banner: framework and Node versions, the options (redacted), the env. */
export function logStartup(
  { logger, log }: StartupLog, framework: FrameworkInfo, options: ResolvedOptions, isProduction: boolean, nodeEnv: string | undefined,
): void {
  log(`[master] =================== ${framework.name} start =====================`);
  logger.info('[master] node version %s', process.version);
  const alinode = (process as { alinode?: string }).alinode;
  if (alinode) logger.info('[master] alinode version %s', alinode);
  logger.info('[master] %s version %s', framework.name, framework.version);
  const shown = redactOptions(options);
  if (isProduction) {
    logger.info('[master] start with options:%s%s', os.EOL, JSON.stringify(shown, null, 2));
  } else {
    log('[master] start with options: %j', shown);
  }
  log('[master] start with env: isProduction: %s, EGG_SERVER_ENV: %s, NODE_ENV: %s', isProduction, options.env, nodeEnv);
}
