/** Something the round tracker follows; `probedInRound` is owned by ProbeRounds. */
export interface RoundMember {
  /** Number of the last round in which this target was probed; -1 before its first probe. */
  probedInRound: number;
}

/**
 * Measures probe rounds: a round ends once every target has been probed at least once since the
 * round began, so its duration shows whether the node keeps up with the interval (a saturated
 * engine's rounds stretch beyond it). O(1) per probe: a counter, no per-round set.
 */
export class ProbeRounds {
  private round = 0;
  private startedAt = 0;
  /** Targets not yet probed in this round. */
  private remaining = 0;
  private members = 0;
  private running = false;

  constructor(
    private readonly onRound: (durationMs: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts the first round over the members already added. */
  begin(): void {
    this.running = true;
    this.round += 1;
    this.startedAt = this.now();
    this.remaining = this.members;
  }

  end(): void {
    this.running = false;
  }

  added(member: RoundMember): void {
    member.probedInRound = -1;
    this.members += 1;
    this.remaining += 1;
  }

  removed(member: RoundMember): void {
    this.members -= 1;
    if (member.probedInRound !== this.round) this.countDown();
  }

  probed(member: RoundMember): void {
    if (member.probedInRound === this.round) return;
    member.probedInRound = this.round;
    this.countDown();
  }

  private countDown(): void {
    this.remaining -= 1;
    if (this.remaining > 0 || !this.running) return;
    if (this.members > 0) this.onRound(this.now() - this.startedAt);
    this.begin();
  }
}
