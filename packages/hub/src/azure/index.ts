export { AzureIotHubConnector, replacementPatch, type AzureIotHubConnectorOptions } from './connector';
export { parseHubConnectionString, type HubConnectionString } from './connection-string';
export { IotHubRestClient, IOT_HUB_API_VERSION, type IotHubResponse, type IotHubRestClientOptions } from './rest-client';
