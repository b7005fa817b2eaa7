import type { EventEmitter } from 'node:events';
import { PacketSizeLimit } from '@opendps/model';

export { PacketSizeLimit };

/** The part of mqtt-packet's parser the guard wraps: every byte aedes reads goes through `parse`. */
export interface MqttParser extends EventEmitter {
  parse(chunk: Buffer): number;
}

interface GuardedParser extends MqttParser {
  packetSizeLimit: PacketSizeLimit;
  packetSizeProblem: string | undefined;
}

/**
 * Checks every chunk before the parser buffers it: a chunk that breaks the limit is never parsed
 * and the parser fails with an 'error' (aedes then destroys the connection). This is a check on the
 * parser's input, not a stream in between: an idle connection pays one small object for it
 * (docs/scale.md), and its bytes flow from the socket straight into the parser.
 */
export function guardParserInput(parser: MqttParser, maxPacketBytes: number): void {
  const guarded = parser as GuardedParser;
  guarded.packetSizeLimit = new PacketSizeLimit(maxPacketBytes);
  guarded.packetSizeProblem = undefined;
  guarded.parse = guardedParse;
}

/** One function shared by every guarded parser (no closure per connection). */
function guardedParse(this: GuardedParser, chunk: Buffer): number {
  if (this.packetSizeProblem !== undefined) return 0;
  const problem = this.packetSizeLimit.inspect(chunk);
  if (problem !== undefined) {
    this.packetSizeProblem = problem;
    this.emit('error', new Error(problem));
    return 0;
  }
  return (Object.getPrototypeOf(this) as MqttParser).parse.call(this, chunk);
}
