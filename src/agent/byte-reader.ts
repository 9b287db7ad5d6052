/**
 * Exact-length reads from an async iterable of byte pieces (a Readable, a pipeline's source).
 * It pulls a piece only when the bytes it holds do not cover the read, so it holds at most one
 * read's worth plus one piece: the envelope codec's bounded memory rests on this.
 */
export class ByteReader {
  private readonly pieces: Buffer[] = [];
  private held = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<unknown>) {}

  /** Over bytes already in memory (a header read from a file). */
  static of(bytes: Buffer): ByteReader {
    let given = false;
    return new ByteReader({
      next: async () => {
        if (given) return { done: true, value: undefined };
        given = true;
        return { done: false, value: bytes };
      },
    });
  }

  /** `n` bytes, or fewer only when the input ended first. */
  async read(n: number): Promise<Buffer> {
    while (this.held < n && (await this.pull()));
    return this.take(Math.min(n, this.held));
  }

  /** True when no byte is left (pulls one piece ahead to know). */
  async atEnd(): Promise<boolean> {
    while (this.held === 0) if (!(await this.pull())) return true;
    return false;
  }

  /** One more piece from the source; false at its end. */
  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const piece = asBuffer(next.value);
    if (piece.length > 0) {
      this.pieces.push(piece);
      this.held += piece.length;
    }
    return true;
  }

  private take(n: number): Buffer {
    const first = this.pieces[0];
    if (n === 0 || !first) return Buffer.alloc(0);
    if (first.length >= n) {
      // The common case (a read within one piece): no copy.
      if (first.length === n) this.pieces.shift();
      else this.pieces[0] = first.subarray(n);
      this.held -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.pieces[0] as Buffer;
      const used = Math.min(piece.length, n - filled);
      piece.copy(out, filled, 0, used);
      filled += used;
      if (used === piece.length) this.pieces.shift();
      else this.pieces[0] = piece.subarray(used);
    }
    this.held -= n;
    return out;
  }
}

function asBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  // A stream with setEncoding() yields strings: the bytes are no longer what was written.
  throw new TypeError('expected a byte stream (Buffer or Uint8Array pieces), got ' + typeof value);
}
