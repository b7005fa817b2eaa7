import { deriveDeviceKey } from '@opendps/attestation';
import { assertSymmetricKey, isDpsError, isValidRegistrationId } from '@opendps/model';
import { stringValue, type Command, type CommandGroup } from '../command';
import { UsageError } from '../errors';
import { EXIT_OK } from '../io';

/** `opendps key derive`: the device key of a symmetric-key enrollment group (docs/service-rest.md §14). */
const deriveCommand: Command = {
  name: 'derive',
  summary: "Print a device's key derived from its enrollment group's key: base64(HMAC-SHA256(groupKey, registrationId)).",
  synopsis: '--group-key KEY --registration-id ID',
  options: {
    'group-key': { type: 'string', value: 'BASE64', help: "the enrollment group's primary or secondary key (required)" },
    'registration-id': { type: 'string', value: 'ID', help: 'the device registration id (required)' },
  },
  positionals: { min: 0, max: 0 },
  async run(values, _positionals, io) {
    const groupKey = stringValue(values, 'group-key');
    const registrationId = stringValue(values, 'registration-id');
    if (!groupKey || !registrationId) throw new UsageError('--group-key and --registration-id are required');
    try {
      assertSymmetricKey(groupKey, 'group key');
    } catch (error) {
      throw isDpsError(error) ? new UsageError(`--group-key: ${error.message}`) : error;
    }
    if (!isValidRegistrationId(registrationId)) throw new UsageError(`--registration-id: '${registrationId}' is not a valid registration id`);
    io.out(deriveDeviceKey(groupKey, registrationId));
    return EXIT_OK;
  },
};

export const keyGroup: CommandGroup = {
  name: 'key',
  summary: 'Symmetric key helpers.',
  subcommands: [deriveCommand],
};
