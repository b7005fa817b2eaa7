import { Errors, type DpsError } from '@opendps/model';

/** The DPS MQTT topic grammar (docs/device-wire.md §2). */
export const RESPONSE_FILTER = '$dps/registrations/res/#';
const PREFIX = '$dps/registrations/';
const REGISTER = /^\$dps\/registrations\/PUT\/iotdps-register\/\?(.*)$/;
const OPERATION_STATUS = /^\$dps\/registrations\/GET\/iotdps-get-operationstatus\/\?(.*)$/;
/** `$rid` is echoed into our response topic: printable ASCII without `&`, bounded. */
const RID = /^[\x21-\x25\x27-\x7e]{1,128}$/;

export type DpsRequest =
  | { kind: 'register'; rid: string }
  | { kind: 'operationStatus'; rid: string; operationId: string }
  /** A `$dps/registrations/` topic we cannot serve but can answer: a coded 400 on its `$rid`. */
  | { kind: 'invalid'; rid: string; error: DpsError };

/** `k=v&k=v` as sent; values are URL-decoded when they decode. */
export function parseQuery(query: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const raw = eq < 0 ? '' : part.slice(eq + 1);
    let value = raw;
    try {
      value = decodeURIComponent(raw);
    } catch {
      // keep the raw text; whoever reads the field validates it
    }
    if (!fields.has(key)) fields.set(key, value);
  }
  return fields;
}

/** The `$rid` exactly as sent (never decoded: the client matches our echo byte for byte). */
function ridOf(query: string): string | undefined {
  for (const part of query.split('&')) {
    if (part.startsWith('$rid=')) {
      const rid = part.slice('$rid='.length);
      return RID.test(rid) ? rid : undefined;
    }
  }
  return undefined;
}

/**
 * Classify a device PUBLISH topic. `undefined` when it is not a DPS request with a usable `$rid`:
 * there is nowhere to answer, so the caller closes the connection.
 */
export function parseRequestTopic(topic: string): DpsRequest | undefined {
  if (!topic.startsWith(PREFIX)) return undefined;
  const question = topic.indexOf('?');
  if (question < 0) return undefined;
  const rid = ridOf(topic.slice(question + 1));
  if (rid === undefined) return undefined;

  const register = REGISTER.exec(topic);
  if (register) return { kind: 'register', rid };

  const status = OPERATION_STATUS.exec(topic);
  if (status) {
    const operationId = parseQuery(status[1] ?? '').get('operationId');
    if (!operationId) {
      return { kind: 'invalid', rid, error: Errors.invalidTopic('The operation status request has no operationId.') };
    }
    return { kind: 'operationStatus', rid, operationId };
  }
  return {
    kind: 'invalid',
    rid,
    error: Errors.invalidTopic(
      'Expected $dps/registrations/PUT/iotdps-register/?$rid={rid} or ' +
        '$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={operationId}.',
    ),
  };
}

/** `$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]`: the client requires the `/?` (docs/device-wire.md, trap 4). */
export function responseTopic(status: number, rid: string, retryAfterSeconds?: number): string {
  const retry = retryAfterSeconds === undefined ? '' : `&retry-after=${retryAfterSeconds}`;
  return `$dps/registrations/res/${status}/?$rid=${rid}${retry}`;
}
