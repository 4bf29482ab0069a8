/** Something with a planned time; `queueIndex` is owned by the scheduler (-1: not planned). */
export interface Planned {
  plannedAt: number;
  queueIndex: number;
}

export interface SchedulerHost<T> {
  /** Whether the pool can take one more probe now. */
  hasRoom(): boolean;
  /** Starts the probe of an item whose time has come; the item is no longer planned. */
  run(item: T): void;
}

/**
 * Every planned probe in one min-heap on `plannedAt`, behind one timer for the earliest. A due item is
 * released only while the pool has room, so a saturated pool leaves work here (one slot per target)
 * instead of growing the pool's queue, and the caller calls `drain()` when a probe ends. One timer
 * instead of one per target: 100k Node timers cost more CPU and memory than the heap.
 *
 * The heap compares planned times kept beside it in a typed array (`times[i]` is `heap[i].plannedAt`),
 * not read from the items: at 100k targets an item is cold in the CPU's caches, and a removal's walk
 * down the heap read two of them per level, ~4 µs of cache misses per probe.
 */
export class ProbeScheduler<T extends Planned> {
  private readonly heap: T[] = [];
  private times = new Float64Array(1024);
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires; Infinity when none is armed. */
  private timerAt = Infinity;

  constructor(private readonly host: SchedulerHost<T>) {}

  get size(): number {
    return this.heap.length;
  }

  /** Plans (or re-plans) `item` at `atMs` (Date.now() time). */
  plan(item: T, atMs: number): void {
    const later = item.queueIndex >= 0 && atMs > item.plannedAt;
    item.plannedAt = atMs;
    if (item.queueIndex < 0) {
      if (this.heap.length === this.times.length) {
        const times = new Float64Array(2 * this.times.length);
        times.set(this.times);
        this.times = times;
      }
      item.queueIndex = this.heap.length;
      this.heap.push(item);
    }
    this.times[item.queueIndex] = atMs;
    if (later) this.down(item.queueIndex);
    else this.up(item.queueIndex);
    if (item.queueIndex === 0) this.arm(atMs);
  }

  remove(item: T): void {
    const index = item.queueIndex;
    if (index < 0) return;
    item.queueIndex = -1;
    const last = this.heap.pop()!;
    if (index === this.heap.length) return;
    this.heap[index] = last;
    this.times[index] = this.times[this.heap.length]!;
    last.queueIndex = index;
    this.down(index);
    this.up(last.queueIndex);
  }

  /** Forgets every planned item and the timer. */
  clear(): void {
    for (const item of this.heap) item.queueIndex = -1;
    this.heap.length = 0;
    this.disarm();
  }

  /** Releases due items while the pool has room; arms the timer for the next one otherwise. */
  drain(): void {
    const now = Date.now();
    while (this.heap.length > 0 && this.host.hasRoom()) {
      if (this.times[0]! > now) {
        this.arm(this.times[0]!);
        return;
      }
      const head = this.heap[0]!;
      this.remove(head);
      this.host.run(head);
    }
  }

  private arm(atMs: number): void {
    if (atMs >= this.timerAt) return;
    this.disarm();
    this.timerAt = atMs;
    this.timer = setTimeout(this.onTimer, Math.max(0, atMs - Date.now()));
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.drain();
  };

  private up(index: number): void {
    const { heap, times } = this;
    const item = heap[index]!;
    const time = times[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      if (times[parentIndex]! <= time) break;
      const parent = heap[parentIndex]!;
      heap[index] = parent;
      times[index] = times[parentIndex]!;
      parent.queueIndex = index;
      index = parentIndex;
    }
    heap[index] = item;
    times[index] = time;
    item.queueIndex = index;
  }

  private down(index: number): void {
    const { heap, times } = this;
    const item = heap[index]!;
    const time = times[index]!;
    const half = heap.length >> 1;
    while (index < half) {
      let childIndex = 2 * index + 1;
      const right = childIndex + 1;
      if (right < heap.length && times[right]! < times[childIndex]!) childIndex = right;
      if (times[childIndex]! >= time) break;
      const child = heap[childIndex]!;
      heap[index] = child;
      times[index] = times[childIndex]!;
      child.queueIndex = index;
      index = childIndex;
    }
    heap[index] = item;
    times[index] = time;
    item.queueIndex = index;
  }
}
