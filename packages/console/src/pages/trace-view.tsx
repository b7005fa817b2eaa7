/**
 * A registration trace (docs/observability.md "Registration traces") in words: what the device
 * asked, how it proved who it is, then why this hub (policy, candidates with weights or latency,
 * the chosen one) or why it was refused.
 */
export interface RegistrationTrace {
  time: string;
  registrationId: string;
  transport: string;
  request: string;
  outcome: 'assigned' | 'failed' | 'disabled' | 'refused';
  reason?: string;
  errorCode?: number;
  operationId?: string;
  attestation: { mechanism: string; enrollment?: { kind: 'individual'; registrationId: string } | { kind: 'group'; enrollmentGroupId: string } };
  assignment?: {
    policy: string;
    candidates: { name: string; hostName: string; allocationWeight: number }[];
    chosen: { name: string; hostName: string };
    why: { rule: string; weights?: Record<string, number>; latencyMs?: Record<string, number>; latencyUnknown?: boolean; webhookUrl?: string; iotHubHostName?: string };
    reprovision: { action: string; substatus: string; from?: string; policy?: { updateHubAssignment?: boolean; migrateDeviceData?: boolean } };
  };
  assignedHub?: string;
  deviceId?: string;
  durationMs: number;
  previous?: RegistrationTrace;
}

/** What each refusal reason means, as docs/observability.md "Refusal reasons" lists them. */
const REASONS: Record<string, string> = {
  unknownIdScope: 'no instance has this ID scope',
  invalidRequest: 'the registration id or the request is malformed',
  noCredentials: 'the device sent neither a SAS token nor a client certificate',
  malformedToken: 'the SAS token cannot be parsed',
  unknownEnrollment: 'no individual enrollment and no group matches the device',
  wrongKey: 'the token is signed with neither key of the enrollment',
  wrongAttestation: 'the enrollment uses another attestation mechanism',
  wrongResource: 'the token was signed for another resource',
  tokenExpired: 'the token has expired',
  enrollmentDisabled: 'the matching enrollment is disabled',
  certificateExpired: 'a certificate of the chain is expired or not yet valid',
  untrustedChain: 'the certificate chain does not verify',
  unverifiedCa: "the group's CA certificate has no proof of possession yet",
  tpmChallengeFailed: 'the TPM did not answer the activation challenge',
  throttled: 'the instance is over its quota',
  noHub: 'no linked hub is a candidate',
  webhookFailed: 'the custom allocation webhook failed, timed out or answered badly',
  hubUnavailable: 'the chosen hub could not be reached',
  storeUnavailable: 'the state store could not answer; the device was told to retry',
  internal: 'an internal error',
};

const MECHANISMS: Record<string, string> = { symmetricKey: 'a symmetric key (SAS token)', x509: 'an X.509 certificate', tpm: 'a TPM' };

const ACTIONS: Record<string, string> = {
  initial: 'first assignment',
  keep: 'kept on its hub (the reprovisioning policy says never, or nothing changed)',
  migrate: 'moved, with its twin data migrated',
  reset: 'reset to the initial configuration',
};

function whyText(assignment: NonNullable<RegistrationTrace['assignment']>): string {
  const { why, chosen } = assignment;
  switch (why.rule) {
    case 'hashed':
      return why.latencyUnknown
        ? `No latency figure for the device's network, so the weighted hash of the registration id chose ${chosen.name}.`
        : `The weighted hash of the registration id chose ${chosen.name}; a hub's share grows with its weight, and a device keeps its hub while the hub set is unchanged.`;
    case 'lowestLatency':
      return `${chosen.name} has the lowest latency from the device's network${why.weights && Object.keys(why.weights).length > 1 ? ' (a tie, broken by the weighted hash)' : ''}.`;
    case 'static':
      return `The enrollment names exactly one hub: ${chosen.name}.`;
    case 'webhook':
      return `The custom allocation webhook ${why.webhookUrl ?? ''} answered ${why.iotHubHostName ?? chosen.hostName}.`;
    default:
      return `Rule ${why.rule} chose ${chosen.name}.`;
  }
}

function enrollmentText(trace: RegistrationTrace): string {
  const enrollment = trace.attestation.enrollment;
  if (!enrollment) return 'no enrollment matched';
  return enrollment.kind === 'individual' ? `individual enrollment ${enrollment.registrationId}` : `enrollment group ${enrollment.enrollmentGroupId}`;
}

export function TraceView({ trace, nested }: { trace: RegistrationTrace; nested?: boolean }) {
  const assignment = trace.assignment;
  const Heading = nested ? 'h4' : 'h3';
  const outcome =
    trace.outcome === 'assigned'
      ? `Assigned to ${trace.assignedHub ?? assignment?.chosen.hostName ?? '?'}${trace.deviceId ? ` as device ${trace.deviceId}` : ''}`
      : trace.outcome === 'disabled'
        ? 'Refused: the enrollment is disabled (the device was told "disabled")'
        : `${trace.outcome === 'failed' ? 'Failed' : 'Refused'}: ${trace.reason ? (REASONS[trace.reason] ?? trace.reason) : 'no reason recorded'}`;
  return (
    <article class={`trace trace-${trace.outcome}`} aria-label={`Decision trace of ${trace.registrationId}`}>
      <Heading class={`trace-outcome status-${trace.outcome === 'assigned' ? 'assigned' : 'failed'}`}>
        {outcome}
        {trace.errorCode !== undefined ? ` (error ${trace.errorCode})` : ''}
      </Heading>
      <ol class="trace-steps">
        <li>
          <strong>Request.</strong> {trace.request} over {trace.transport} at {new Date(trace.time).toLocaleString()}
          {trace.operationId ? (
            <>
              , operation <code>{trace.operationId}</code>
            </>
          ) : null}
          ; answered in {trace.durationMs} ms.
        </li>
        <li>
          <strong>Attestation.</strong> The device proved itself with {MECHANISMS[trace.attestation.mechanism] ?? trace.attestation.mechanism}, matched by {enrollmentText(trace)}.
          {trace.reason && trace.outcome !== 'assigned' ? (
            <>
              {' '}
              Reason: <code>{trace.reason}</code>.
            </>
          ) : null}
        </li>
        {assignment ? (
          <li>
            <strong>Allocation.</strong> Policy <code>{assignment.policy}</code>. {whyText(assignment)}
            <div class="table-wrap" tabIndex={0} role="region" aria-label="Candidate hubs">
              <table class="candidates">
                <caption>Candidate hubs</caption>
                <thead>
                  <tr>
                    <th scope="col">Hub</th>
                    <th scope="col">Host name</th>
                    <th scope="col">Weight</th>
                    {assignment.why.latencyMs ? <th scope="col">Latency</th> : null}
                  </tr>
                </thead>
                <tbody>
                  {assignment.candidates.map((candidate) => {
                    const chosen = candidate.name === assignment.chosen.name;
                    const latency = assignment.why.latencyMs?.[candidate.name];
                    return (
                      <tr key={candidate.name} class={chosen ? 'chosen' : undefined}>
                        <td>
                          {candidate.name}
                          {chosen ? <strong> (chosen)</strong> : null}
                        </td>
                        <td>{candidate.hostName}</td>
                        <td>{candidate.allocationWeight}</td>
                        {assignment.why.latencyMs ? <td>{latency !== undefined ? `${latency} ms` : 'unknown'}</td> : null}
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </li>
        ) : null}
        {assignment ? (
          <li>
            <strong>Reprovisioning.</strong> {ACTIONS[assignment.reprovision.action] ?? assignment.reprovision.action}
            {assignment.reprovision.from ? ` (from ${assignment.reprovision.from})` : ''}; substatus <code>{assignment.reprovision.substatus}</code>.
          </li>
        ) : null}
      </ol>
      {trace.previous ? (
        <details class="previous">
          <summary>The outcome this refusal replaced</summary>
          <TraceView trace={trace.previous} nested />
        </details>
      ) : null}
      <details>
        <summary>Trace as JSON</summary>
        <pre>{JSON.stringify(trace, null, 2)}</pre>
      </details>
    </article>
  );
}
