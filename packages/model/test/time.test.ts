import { utcNow } from '../src/time';

test('utcNow writes 7 fractional digits, as DPS does', () => {
  expect(utcNow(new Date(Date.UTC(2022, 6, 5, 21, 27, 16, 812)))).toBe('2022-07-05T21:27:16.8120000Z');
  expect(utcNow(new Date(Date.UTC(2026, 0, 1)))).toBe('2026-01-01T00:00:00.0000000Z');
  expect(utcNow()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}0000Z$/);
});
