import type { Reachability } from './hysteresis.js';

/** The last known reachability of every target; `set` says whether the value changed, so only changes travel on. */
export class ResultsCache {
  private readonly states = new Map<string, Reachability>();
  private unreachable = 0;

  get(address: string): Reachability {
    return this.states.get(address) ?? 'unknown';
  }

  /** Stores `state`; true when it differs from the previous value. */
  set(address: string, state: Reachability): boolean {
    const previous = this.get(address);
    if (previous === state) return false;
    this.states.set(address, state);
    this.unreachable += Number(state === 'unreachable') - Number(previous === 'unreachable');
    return true;
  }

  delete(address: string): void {
    if (this.get(address) === 'unreachable') this.unreachable -= 1;
    this.states.delete(address);
  }

  /** Number of targets currently unreachable. */
  unreachableCount(): number {
    return this.unreachable;
  }
}
