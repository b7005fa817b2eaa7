export { candidateHubs, findHub, hubMatches, namedHubs } from './candidates';
export { chooseHashed, rendezvousScore } from './hashed';
export { ConfiguredLatencySource, ipv4ToNumber, type LatencyConfig, type LatencySource } from './latency';
export {
  buildAllocationRequest,
  parseAllocationResponse,
  type RuntimeAttestation,
  type WebhookAllocation,
  type WebhookAllocationRequest,
  type WebhookClient,
  type WebhookRequestInput,
} from './webhook';
export { HttpsWebhookClient, checkWebhookUrl, type HttpsWebhookClientOptions, type WebhookLookup } from './httpsWebhook';
export { allocate, allocationPolicyOf, type Allocation, type AllocationInput, type AllocationWhy } from './allocate';
export {
  DEFAULT_REPROVISION_POLICY,
  reprovision,
  type ReprovisionAction,
  type ReprovisionDecision,
  type ReprovisionInput,
} from './reprovision';
