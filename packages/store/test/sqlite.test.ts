import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../src';
import { describeStoreConformance } from './conformance';

const dir = mkdtempSync(path.join(tmpdir(), 'opendps-sqlite-'));

describeStoreConformance(
  'sqlite',
  async () => new SqliteStore(path.join(dir, 'opendps.db')),
  () => rmSync(dir, { recursive: true, force: true }),
);
