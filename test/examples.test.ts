import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { generateSymmetricKey } from '@opendps/model';
import { enrollments } from '@opendps/store';
import { startOpenDps, type OpenDps } from './support/opendps';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');

/** The README's device example, run as a user would: it must keep working. */
describe('examples/provision-device.js', () => {
  let opendps: OpenDps;
  beforeAll(async () => {
    // As `pnpm start` runs it: the hub on the device listeners.
    opendps = await startOpenDps({ hubOnDeviceListeners: true });
  });
  afterAll(() => opendps.stop());

  it('provisions a device with the unmodified SDK and reads its initial desired twin from the hub', async () => {
    const key = generateSymmetricKey();
    await enrollments(opendps.server.store, opendps.connection.idScope).put({
      registrationId: 'example-device',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() } },
      initialTwin: { properties: { desired: { interval: 30 } } },
    });
    const { stdout } = await run(process.execPath, [path.join(root, 'examples/provision-device.js'), 'example-device', key], {
      cwd: root,
      env: { ...process.env, OPENDPS_CONNECTION: opendps.server.connectionFile },
      timeout: 30_000,
    });
    expect(stdout).toContain(`assigned to ${opendps.connection.endpoints.hubs[0]} as example-device`);
    expect(stdout).toContain('desired properties: {"interval":30');
  });
});

/** The README's service-SDK example, run as written: create, list and delete an enrollment. */
describe('examples/manage-enrollments.js', () => {
  let opendps: OpenDps;
  beforeAll(async () => {
    opendps = await startOpenDps();
  });
  afterAll(() => opendps.stop());

  it('creates an enrollment with the unmodified service SDK, finds it in a query, deletes it', async () => {
    const { stdout } = await run(process.execPath, [path.join(root, 'examples/manage-enrollments.js'), 'example-managed'], {
      cwd: root,
      env: { ...process.env, OPENDPS_CONNECTION: opendps.server.connectionFile },
      timeout: 30_000,
    });
    expect(stdout).toMatch(/^created example-managed with key 88 characters long$/m);
    expect(stdout).toMatch(/^enrollments: .*example-managed/m);
    expect(stdout).toContain('deleted example-managed');
    expect(await enrollments(opendps.server.store, opendps.connection.idScope).get('example-managed')).toBeUndefined();
  });
});
