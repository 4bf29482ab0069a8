/**
 * Items waiting for a deadline of `now + timeoutMs`: one FIFO per timeout length, in which deadlines
 * come in order, behind one timer for its head; no timer per item. An item settled meanwhile stays
 * queued until its deadline, where `expire` must ignore it: cheaper than finding it.
 */
export class Expiries<T> {
  private readonly queues = new Map<number, ExpiryQueue<T>>();

  constructor(
    private readonly expire: (item: T) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(item: T, timeoutMs: number): void {
    let queue = this.queues.get(timeoutMs);
    if (!queue) {
      queue = new ExpiryQueue(this.expire, this.now);
      this.queues.set(timeoutMs, queue);
    }
    queue.push(item, this.now() + timeoutMs);
  }

  /** Forgets every item and timer; none of them expires. */
  clear(): void {
    for (const queue of this.queues.values()) queue.clear();
    this.queues.clear();
  }
}

class ExpiryQueue<T> {
  private items: (T | undefined)[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly expire: (item: T) => void,
    private readonly now: () => number,
  ) {}

  push(item: T, deadline: number): void {
    this.items.push(item);
    this.deadlines.push(deadline);
    if (!this.timer) this.arm();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
    this.deadlines = [];
    this.head = 0;
  }

  private arm(): void {
    this.timer = setTimeout(this.onTimer, Math.max(0, this.deadlines[this.head]! - this.now()));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    const now = this.now();
    while (this.head < this.deadlines.length && this.deadlines[this.head]! <= now) {
      const item = this.items[this.head]!;
      this.items[this.head] = undefined;
      this.head += 1;
      this.expire(item);
    }
    if (this.head === this.deadlines.length) {
      this.items = [];
      this.deadlines = [];
      this.head = 0;
      return;
    }
    // Drop the expired part once it is most of the arrays.
    if (this.head > 1024 && this.head * 2 > this.deadlines.length) {
      this.items = this.items.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
    this.arm();
  };
}
