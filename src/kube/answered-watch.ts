// A Watch that tells when the apiserver answered, so that a supervisor can tell a quiet watch from a failing one.
import * as k8s from '@kubernetes/client-node';

/**
 * client-node's Watch says nothing when a watch request is answered (only when it ends), so a quiet
 * but healthy watch cannot be told from a failing one. This one knows: watch() resolves before `done`
 * is called exactly when the apiserver answered 200 and the stream is open.
 */
export class AnsweredWatch extends k8s.Watch {
  /** A stream is open now. */
  isOpen = false;

  constructor(
    config: k8s.KubeConfig,
    /** Called when a stream opens (true) and when it closes (false). */
    private readonly onChange: (open: boolean) => void,
  ) {
    super(config);
  }

  override async watch(...[path, queryParams, callback, done]: Parameters<k8s.Watch['watch']>): Promise<AbortController> {
    let ended = false;
    const request = await super.watch(path, queryParams, callback, (err: unknown) => {
      ended = true;
      if (this.isOpen) {
        this.isOpen = false;
        this.onChange(false);
      }
      done(err);
    });
    if (!ended) {
      this.isOpen = true;
      this.onChange(true);
    }
    return request;
  }
}
