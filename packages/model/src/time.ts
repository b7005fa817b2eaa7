/**
 * DPS timestamps carry 7 fractional digits (`2022-07-05T21:27:16.8123235Z`, docs/device-wire.md §6).
 * JavaScript has milliseconds, so the last four digits are zero.
 */
export function utcNow(date: Date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}
