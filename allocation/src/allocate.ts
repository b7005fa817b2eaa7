import {
  Errors,
  type AllocationPolicy,
  type EnrollmentGroup,
  type IndividualEnrollment,
  type InitialTwin,
  type LinkedHub,
  type ProvisioningInstance,
} from '@opendps/model';
import { candidateHubs } from './candidates';
import { chooseHashed } from './hashed';
import type { LatencySource } from './latency';
import { buildAllocationRequest, parseAllocationResponse, type RuntimeAttestation, type WebhookClient } from './webhook';

export interface AllocationInput {
  instance: ProvisioningInstance;
  enrollment: IndividualEnrollment | EnrollmentGroup;
  registrationId: string;
  /** Default: `candidateHubs(instance, enrollment)`. */
  candidates?: readonly LinkedHub[];
  /** The device's current assignment, on re-registration. */
  current?: { hubHostName: string; deviceId?: string };
  /** The device's registration payload (for the webhook). */
  payload?: unknown;
  attestation: RuntimeAttestation;
  /** The device's source address (IPv4 or IPv4-mapped IPv6), for geoLatency. */
  clientAddress?: string;
  /** geoLatency's source; without one every device's location is unknown (weighted hash). */
  latency?: LatencySource;
  /** Needed by `custom` only. */
  webhook?: WebhookClient;
}

export interface Allocation {
  hub: LinkedHub;
  policy: AllocationPolicy;
  /** From a custom webhook: overrides the enrollment's initial twin (docs/service-rest.md §12). */
  initialTwin?: InitialTwin;
  /** From a custom webhook: returned to the device in `registrationState.payload`. */
  payload?: unknown;
  /** Why this hub: what the registration trace records for the operator. */
  why: AllocationWhy;
}

/** The figures a policy decided on, by hub name. */
export type AllocationWhy =
  | { rule: 'hashed'; weights: Record<string, number> }
  | { rule: 'lowestLatency'; latencyMs: Record<string, number>; weights: Record<string, number> }
  /** No latency figure for any candidate (unknown network, or the source failed): the weighted hash. */
  | { rule: 'hashed'; weights: Record<string, number>; latencyUnknown: true }
  | { rule: 'static' }
  | { rule: 'webhook'; webhookUrl: string; iotHubHostName: string };

/** The enrollment's allocationPolicy wins, else the instance default (docs/service-rest.md §11). */
export function allocationPolicyOf(instance: ProvisioningInstance, enrollment: IndividualEnrollment | EnrollmentGroup): AllocationPolicy {
  return enrollment.allocationPolicy ?? instance.allocationPolicy;
}

/**
 * Step 5 of the flow: choose the device's hub among the candidates. Pure apart from the injected
 * latency source and webhook. Every policy re-evaluates from scratch; whether the device actually
 * moves is `reprovision`'s decision.
 */
export async function allocate(input: AllocationInput): Promise<Allocation> {
  const { instance, enrollment, registrationId } = input;
  const candidates = input.candidates ?? candidateHubs(instance, enrollment);
  if (candidates.length === 0) throw Errors.noHubForDevice();
  const policy = allocationPolicyOf(instance, enrollment);
  switch (policy) {
    case 'hashed':
      return { policy, hub: chooseHashed(candidates, registrationId), why: { rule: 'hashed', weights: weightsOf(candidates) } };
    case 'geoLatency':
      return { policy, ...(await chooseLowestLatency(candidates, registrationId, input.clientAddress, input.latency)) };
    case 'static':
      if (candidates.length !== 1) {
        throw Errors.noHubForDevice(
          `Static allocation needs exactly one hub, but ${candidates.length} are candidates (${candidates.map((hub) => hub.name).join(', ')}).`,
        );
      }
      return { policy, hub: candidates[0] as LinkedHub, why: { rule: 'static' } };
    case 'custom':
      return { policy, ...(await allocateByWebhook(input, candidates)) };
    default:
      throw Errors.invalidAllocation(`Unknown allocation policy '${String(policy)}'.`);
  }
}

/**
 * The candidates with the lowest known latency, the weighted hash among them on a tie. No figure for
 * any candidate (unknown location), or a failing latency source, means the hash over all of them:
 * lowest latency is an optimisation, never a reason to refuse a device.
 */
async function chooseLowestLatency(
  candidates: readonly LinkedHub[],
  registrationId: string,
  clientAddress: string | undefined,
  source: LatencySource | undefined,
): Promise<{ hub: LinkedHub; why: AllocationWhy }> {
  let figures: ReadonlyMap<string, number> = new Map();
  try {
    if (source) figures = await source.latencies(clientAddress, candidates);
  } catch {
    figures = new Map();
  }
  const known = candidates.filter((hub) => Number.isFinite(figures.get(hub.name)));
  if (known.length === 0) {
    return { hub: chooseHashed(candidates, registrationId), why: { rule: 'hashed', weights: weightsOf(candidates), latencyUnknown: true } };
  }
  const lowest = Math.min(...known.map((hub) => figures.get(hub.name) as number));
  const fastest = known.filter((hub) => figures.get(hub.name) === lowest);
  const latencyMs = Object.fromEntries(known.map((hub) => [hub.name, figures.get(hub.name) as number]));
  return { hub: chooseHashed(fastest, registrationId), why: { rule: 'lowestLatency', latencyMs, weights: weightsOf(fastest) } };
}

function weightsOf(hubs: readonly LinkedHub[]): Record<string, number> {
  return Object.fromEntries(hubs.map((hub) => [hub.name, hub.allocationWeight]));
}

async function allocateByWebhook(input: AllocationInput, candidates: readonly LinkedHub[]) {
  const definition = input.enrollment.customAllocationDefinition;
  if (!definition?.webhookUrl) throw Errors.invalidAllocation("allocationPolicy 'custom' needs a customAllocationDefinition.");
  if (!input.webhook) throw Errors.webhookFailed('No custom allocation webhook client is configured.');
  const request = buildAllocationRequest({ ...input, candidates });
  const answer = await input.webhook.call(definition.webhookUrl, request);
  const allocation = parseAllocationResponse(answer, candidates);
  const why: AllocationWhy = { rule: 'webhook', webhookUrl: redactUrl(definition.webhookUrl), iotHubHostName: allocation.hub.hostName };
  return { ...allocation, why };
}

/** A webhook URL may carry a function key (`?code=`): the trace keeps the origin and path only. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '[invalid url]';
  }
}
