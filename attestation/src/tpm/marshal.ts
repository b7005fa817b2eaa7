import { DpsError, Errors } from '@opendps/model';

/**
 * Bounds-checked big-endian reader over TPM marshalled bytes (Part 1, 9: every integer is big-endian,
 * every sized buffer a u16 length then bytes). Any read past the end, or a size beyond the structure's
 * maximum, is a coded error naming the structure, never a RangeError.
 */
export class TpmReader {
  private offset = 0;

  constructor(
    private readonly bytes: Buffer,
    /** What is being read, for error messages ("The endorsement key"). */
    readonly what: string,
    private readonly fail: (detail: string) => DpsError = Errors.invalidTpmKey,
  ) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  u8(field: string): number {
    return this.take(1, field).readUInt8(0);
  }

  u16(field: string): number {
    return this.take(2, field).readUInt16BE(0);
  }

  u32(field: string): number {
    return this.take(4, field).readUInt32BE(0);
  }

  take(length: number, field: string): Buffer {
    if (length > this.remaining) {
      throw this.error(`is truncated: ${field} needs ${length} bytes at offset ${this.offset}, ${this.remaining} left`);
    }
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  /** A TPM2B: u16 size then that many bytes; returns the bytes without the size. */
  sized(field: string, max: number): Buffer {
    const size = this.u16(`${field} size`);
    if (size > max) throw this.error(`has ${field} of ${size} bytes, more than the ${max} allowed`);
    return this.take(size, field);
  }

  /** The bytes between two positions (a structure's exact marshalled form). */
  slice(from: number, to: number): Buffer {
    return this.bytes.subarray(from, to);
  }

  /** Requires every byte to have been consumed. */
  end(): void {
    if (this.remaining !== 0) throw this.error(`has ${this.remaining} unexpected trailing bytes`);
  }

  error(detail: string): DpsError {
    return this.fail(`${this.what} ${detail}.`);
  }
}

/** Big-endian writer; `sized` wraps what its callback writes in a TPM2B. */
export class TpmWriter {
  private readonly chunks: Buffer[] = [];

  u8(value: number): this {
    return this.push(Buffer.of(value & 0xff));
  }

  u16(value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    return this.push(b);
  }

  u32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value >>> 0);
    return this.push(b);
  }

  bytes(value: Uint8Array): this {
    return this.push(Buffer.from(value));
  }

  /** A TPM2B of `value`. */
  tpm2b(value: Uint8Array): this {
    if (value.length > 0xffff) throw new RangeError('A TPM2B holds at most 65535 bytes.');
    return this.u16(value.length).bytes(value);
  }

  /** A TPM2B of whatever `build` writes. */
  sized(build: (inner: TpmWriter) => void): this {
    const inner = new TpmWriter();
    build(inner);
    return this.tpm2b(inner.toBuffer());
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private push(chunk: Buffer): this {
    this.chunks.push(chunk);
    return this;
  }
}

/** TPM2B(value): the u16 size prefix then the bytes. */
export function tpm2b(value: Uint8Array): Buffer {
  return new TpmWriter().tpm2b(value).toBuffer();
}
