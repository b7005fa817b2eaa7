import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { ConfigError } from './config-error';
import { validateConfigFile } from './file-schema';
import type { ConfigLayer } from './types';

/**
 * Reads `--config FILE`: JSON, or YAML for `.yaml`/`.yml` (YAML is a superset of JSON, so a JSON
 * file named .yaml works too). Relative paths inside the file are resolved against its folder.
 */
export function readConfigFile(path: string): ConfigLayer {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read the config file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}.`);
  }
  const layer = validateConfigFile(parse(text, file), file);
  const base = dirname(file);
  if (layer.dataDir !== undefined) layer.dataDir = resolve(base, layer.dataDir);
  if (layer.webhookCaFile !== undefined) layer.webhookCaFile = resolve(base, layer.webhookCaFile);
  if (layer.tls?.cert !== undefined) layer.tls.cert = resolve(base, layer.tls.cert);
  if (layer.tls?.key !== undefined) layer.tls.key = resolve(base, layer.tls.key);
  return layer;
}

function parse(text: string, file: string): unknown {
  if (/\.ya?ml$/i.test(file)) {
    try {
      return YAML.parse(text);
    } catch (error) {
      throw new ConfigError(`${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}
