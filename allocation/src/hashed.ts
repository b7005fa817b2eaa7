import { createHash } from 'node:crypto';
import { Errors, type LinkedHub } from '@opendps/model';

/**
 * The weighted rendezvous score of `hub` for a registration id: -w / ln(u), u in (0,1) from the first
 * 53 bits of SHA-256(lower(registrationId) "\n" hub.name). Highest score wins, so a device keeps its
 * hub while the hub set is unchanged and a new hub takes only its weighted share (docs/service-rest.md §11).
 * Byte-for-byte the formula packages/registration used first: changing it would move devices.
 */
export function rendezvousScore(registrationId: string, hub: LinkedHub): number {
  const digest = createHash('sha256').update(`${registrationId.toLowerCase()}\n${hub.name}`).digest();
  const u = (Number(digest.readBigUInt64BE(0) >> 11n) + 0.5) / 2 ** 53;
  return -hubWeight(hub) / Math.log(u);
}

/** The hub with the highest rendezvous score; ties (practically impossible) go to the first. */
export function chooseHashed(candidates: readonly LinkedHub[], registrationId: string): LinkedHub {
  let best: LinkedHub | undefined;
  let bestScore = -Infinity;
  for (const hub of candidates) {
    const score = rendezvousScore(registrationId, hub);
    if (score > bestScore) [best, bestScore] = [hub, score];
  }
  if (!best) throw Errors.noHubForDevice();
  return best;
}

/** allocationWeight is 1-1000 on Azure, null meaning 1; anything unusable counts as 1. */
function hubWeight(hub: LinkedHub): number {
  const weight = hub.allocationWeight;
  return Number.isFinite(weight) && weight > 0 ? weight : 1;
}
