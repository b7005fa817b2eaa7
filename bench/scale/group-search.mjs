// CPU per symmetric-key group tried, in one process: the search a new group device's token needs
// (docs/scale.md). A/B in alternating rounds: the scan as it was (per group: derive the device key
// from the primary and the secondary key, check the token against both, four node:crypto HMACs),
// two node:crypto HMACs per key, and GroupKeySearch (precomputed key states, JavaScript blocks).
//
//   pnpm -s build && node bench/scale/group-search.mjs --groups 10000 --rounds 5
import { Buffer } from 'node:buffer';
import { createHmac, randomBytes } from 'node:crypto';
import process from 'node:process';
import attestation from '../../attestation/dist/index.js';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const groupCount = Number(args.groups ?? 10000);
const rounds = Number(args.rounds ?? 5);
const key = () => randomBytes(32).toString('base64');
const groups = Array.from({ length: groupCount }, (_, i) => ({ enrollmentGroupId: `group-${i}`, primaryKey: key(), secondaryKey: key() }));
const registrationId = 'gdev-000123';
const resource = `0ne0000ABCD/registrations/${registrationId}`;
// A key no group has: every key of every group is tried (the worst case, and the 401 case).
const token = attestation.parseSasToken(attestation.createSasToken({ resource, key: key(), keyName: 'registration', expiry: 2_000_000_000 }));

const variants = {
  'as before: 4 node:crypto HMACs a group': () => {
    let found = 0;
    for (const group of groups) {
      const keys = [attestation.deriveDeviceKey(group.primaryKey, registrationId), attestation.deriveDeviceKey(group.secondaryKey, registrationId)];
      if (keys.some((k) => attestation.signatureMatches(token, k))) found++;
    }
    return found;
  },
  '2 node:crypto HMACs a key, raw buffers': (() => {
    const raw = groups.flatMap((g) => [Buffer.from(g.primaryKey, 'base64'), Buffer.from(g.secondaryKey, 'base64')]);
    const expected = Buffer.from(token.signature, 'base64');
    const message = `${token.resource}\n${token.expiry}`;
    return () => {
      let found = 0;
      for (const k of raw) {
        const derived = createHmac('sha256', k).update(registrationId).digest();
        if (createHmac('sha256', derived).update(message).digest().equals(expected)) found++;
      }
      return found;
    };
  })(),
  'GroupKeySearch (key states, JS blocks)': (() => {
    const search = new attestation.GroupKeySearch(groups);
    return () => [...search.candidates(token, registrationId)].length;
  })(),
};

const cpu = {};
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const before = process.cpuUsage();
    run();
    const used = process.cpuUsage(before);
    (cpu[name] ??= []).push((used.user + used.system) / groupCount);
  }
}
const rows = Object.entries(cpu).map(([variant, perGroup]) => {
  perGroup.sort((a, b) => a - b);
  return { variant, groups: groupCount, rounds, medianMicrosecondsPerGroup: Number(perGroup[Math.floor(perGroup.length / 2)].toFixed(2)) };
});
process.stdout.write(`${JSON.stringify(rows)}\n`);
