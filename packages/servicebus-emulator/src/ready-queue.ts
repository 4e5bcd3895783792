/**
 * The order in which a store (or one session of it) hands out messages: arrivals in sequence
 * order, with messages that come back (an abandon, an expired lock, a schedule that fell due)
 * going out before newer arrivals, lowest sequence number first, as Service Bus does.
 *
 * It holds sequence numbers only; whether a number still names an available message is the
 * store's to say, so entries that went stale (completed, locked, deferred) are skipped lazily.
 */
export class ReadyQueue {
  /** Arrivals in order, consumed from `head`. */
  private arrivals: number[] = [];
  private head = 0;
  /** Messages back from a lock or a schedule, sorted. */
  private returned: number[] = [];

  push(seq: number): void {
    this.arrivals.push(seq);
  }

  giveBack(seq: number): void {
    this.returned.splice(sortedIndex(this.returned, seq), 0, seq);
  }

  /** Takes the next sequence number, stale or not; undefined when nothing is queued. */
  take(): number | undefined {
    const fromArrivals = this.head < this.arrivals.length ? this.arrivals[this.head] : undefined;
    const fromReturned = this.returned[0];
    if (fromReturned !== undefined && (fromArrivals === undefined || fromReturned < fromArrivals)) {
      this.returned.shift();
      return fromReturned;
    }
    if (fromArrivals === undefined) return undefined;
    this.head++;
    if (this.head > 4096 && this.head * 2 > this.arrivals.length) {
      this.arrivals = this.arrivals.slice(this.head);
      this.head = 0;
    }
    return fromArrivals;
  }

  /** Drops stale entries at the front and tells whether an available one remains. */
  hasAvailable(isAvailable: (seq: number) => boolean): boolean {
    for (;;) {
      const fromArrivals = this.head < this.arrivals.length ? this.arrivals[this.head] : undefined;
      const fromReturned = this.returned[0];
      const next = fromReturned !== undefined && (fromArrivals === undefined || fromReturned < fromArrivals) ? fromReturned : fromArrivals;
      if (next === undefined) return false;
      if (isAvailable(next)) return true;
      this.take();
    }
  }

  get isEmpty(): boolean {
    return this.head >= this.arrivals.length && this.returned.length === 0;
  }
}

function sortedIndex(values: number[], value: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((values[mid] ?? 0) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
