// A failure that stops the process while it starts: what is wrong and what an operator does about
// it. The command line logs it as one fatal line and exits non-zero (a pod then shows
// CrashLoopBackOff with that line in `kubectl logs --previous`).
export class StartupError extends Error {
  constructor(
    message: string,
    /** What to change so that the next start succeeds. */
    readonly fix: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StartupError';
  }
}
