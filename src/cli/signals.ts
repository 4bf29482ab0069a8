// SIGTERM and SIGINT as an AbortSignal. Listened to from the first line of main on, so that a signal
// during module loading or start-up is honoured too (without a listener node would die of it with
// status 143; Kubernetes expects 0 after a requested stop).
export function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    // A second signal: whatever is still stopping is not waited for.
    if (controller.signal.aborted) process.exit(0);
    controller.abort(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return controller.signal;
}
