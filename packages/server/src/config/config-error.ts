/**
 * An invalid configuration value. The CLI prints the message (never a stack) and exits 2.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
