import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Every place a secret can appear in a log line. Paths are fixed here (never from input);
 * pino replaces the value before serialisation, so a secret never reaches the stream.
 */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-app-key"]',
  'req.headers["x-admin-key"]',
  'req.headers["ad-service-token"]',
  'req.headers["adobe-subject-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'authorization',
  'client_secret',
  'clientSecret',
  'access_token',
  'accessToken',
  'software_statement',
  'softwareStatement',
  'deviceToken',
  'deviceSecret',
  'appKey',
  'app_key',
  'siteKey',
  'accessKey',
  'licenseToken',
  'password',
  '*.client_secret',
  '*.clientSecret',
  '*.access_token',
  '*.accessToken',
  '*.software_statement',
  '*.softwareStatement',
  '*.password',
  '*.deviceToken',
  '*.deviceSecret',
  '*.appKey',
  '*.app_key',
];

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      ...(options.name ? { name: options.name } : {}),
      redact: { paths: redactPaths, censor: '[Redacted]' },
      serializers: { err: pino.stdSerializers.err },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
