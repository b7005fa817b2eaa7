/**
 * JSON as 7-bit ASCII: every non-ASCII code unit escaped as \uXXXX. The DPS MQTT client decodes
 * response bodies as ASCII before `JSON.parse` (docs/device-wire.md trap 4).
 */
export function asciiJson(value: unknown): Buffer {
  const text = JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return Buffer.from(text, 'ascii');
}
