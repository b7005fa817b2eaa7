/** What the generators need to make frames the server would otherwise accept. */
export interface CorpusContext {
  idScope: string;
  /** A registration id with an enrollment, and a SAS token for it. */
  registrationId: string;
  deviceToken: string;
  /** The built-in hub's host name (`host:port`), as devices see it. */
  hubHost: string;
  /** A service SAS token (owner policy). */
  serviceToken: string;
  /** The probe device's SAS token for the built-in hub, and the hub's owner token for its REST API. */
  hubDeviceToken: string;
  hubServiceToken: string;
}
