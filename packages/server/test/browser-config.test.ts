import { ConfigError, browserHostOf, resolveConfig, validateConfigFile } from '../src/config';

describe('browser settings', () => {
  it('names the browser host browser.{host} by default, none for an IP host, or --browser-host', () => {
    expect(browserHostOf(resolveConfig({}, {}))).toBe('browser.localhost');
    expect(browserHostOf(resolveConfig({ host: 'dps.example.com' }, {}))).toBe('browser.dps.example.com');
    expect(browserHostOf(resolveConfig({ host: '10.0.0.5' }, {}))).toBeUndefined();
    expect(browserHostOf(resolveConfig({ host: '10.0.0.5' }, { 'browser-host': 'web.example.com' }))).toBe('web.example.com');
    expect(validateConfigFile({ browserHost: 'Web.example.com' }, 'c.json').browserHost).toBe('Web.example.com');
    expect(() => resolveConfig({ 'browser-host': 'web.example.com:443' }, {})).toThrow(/--browser-host must be a host name/);
  });

  it('reads origin lists from flags (comma-separated), the environment and the file (a list or *)', () => {
    const defaults = resolveConfig({}, {});
    expect(defaults.corsOrigins).toBeUndefined();
    expect(defaults.webSocketOrigins).toBeUndefined();
    expect(resolveConfig({ 'cors-origins': 'https://a.example, http://localhost:3000' }, {}).corsOrigins).toEqual(['https://a.example', 'http://localhost:3000']);
    expect(resolveConfig({}, { 'websocket-origins': '*' }).webSocketOrigins).toBe('*');
    expect(validateConfigFile({ corsOrigins: ['https://A.example:8443/'] }, 'c.json').corsOrigins).toEqual(['https://a.example:8443']);
    expect(validateConfigFile({ webSocketOrigins: '*' }, 'c.json').webSocketOrigins).toBe('*');
  });

  it('refuses what is not an origin, naming where it came from', () => {
    expect(() => resolveConfig({ 'cors-origins': 'https://a.example/app' }, {})).toThrow(/--cors-origins: "https:\/\/a.example\/app" is not an origin/);
    expect(() => resolveConfig({}, { 'websocket-origins': 'a.example' })).toThrow(/OPENDPS_WEBSOCKET_ORIGINS: "a.example" is not an origin/);
    expect(() => validateConfigFile({ corsOrigins: [] }, 'c.json')).toThrow(ConfigError);
    expect(() => validateConfigFile({ corsOrigins: [42] }, 'c.json')).toThrow(/c.json: corsOrigins: 42 is not an origin/);
  });
});
