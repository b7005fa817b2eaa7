import { isLoopbackHost, type WebhookUrlPolicy } from '@opendps/model';
import type { ServerConfig } from './types';

/**
 * Which custom allocation webhooks this server calls. http:// to loopback is on by default only
 * while the server itself answers on a loopback name (`pnpm start` on a developer's machine, where
 * a local function host speaks plain http); any other deployment needs `allowHttpWebhooks`.
 */
export function webhookPolicy(config: Pick<ServerConfig, 'host' | 'allowHttpWebhooks' | 'allowLinkLocalWebhooks'>): Required<WebhookUrlPolicy> {
  return {
    allowHttp: config.allowHttpWebhooks ?? isLoopbackHost(config.host),
    allowLinkLocal: config.allowLinkLocalWebhooks ?? false,
  };
}
