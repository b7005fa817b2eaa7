/**
 * DPS timestamps carry 7 fractional digits (`2022-07-05T21:27:16.8123235Z`, docs/device-wire.md §6).
 * JavaScript has milliseconds, so the last four digits are zero. (`toISOString` always ends in
 * `.sssZ`: a slice, where a regular expression showed in the registration profile.)
 */
export function utcNow(date: Date = new Date()): string {
  const iso = date.toISOString();
  return `${iso.slice(0, -1)}0000Z`;
}
