export { CONSOLE_CSP, CONSOLE_PREFIX, consoleRoute, type ConsoleRouteOptions } from './route';
