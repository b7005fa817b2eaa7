import { parseQuery } from './topics';

export interface DpsUsername {
  idScope: string;
  registrationId: string;
  apiVersion?: string;
  clientVersion?: string;
}

/** ID scopes are short alphanumeric strings (`0ne00000A0A`); which ones exist is the service's call. */
const ID_SCOPE = /^[A-Za-z0-9-]{1,64}$/;
const USERNAME = /^([^/]+)\/registrations\/([^/]+)(?:\/\??(.*))?$/;

/**
 * `{idScope}/registrations/{registrationId}/api-version=…&ClientVersion=…` (docs/device-wire.md §2:
 * no `?`, any api-version: Node sends 2019-03-31, the C SDK 2021-06-01). A stray `?` is tolerated.
 */
export function parseUsername(username: string | undefined): DpsUsername | undefined {
  const match = username === undefined ? null : USERNAME.exec(username);
  if (!match) return undefined;
  const [, idScope = '', registrationId = '', query = ''] = match;
  if (!ID_SCOPE.test(idScope)) return undefined;
  const fields = parseQuery(query);
  const apiVersion = fields.get('api-version');
  const clientVersion = fields.get('ClientVersion');
  return {
    idScope,
    registrationId,
    ...(apiVersion ? { apiVersion } : {}),
    ...(clientVersion ? { clientVersion } : {}),
  };
}
