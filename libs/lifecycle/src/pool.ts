/**
 * Hands out a fixed set of resources (a context's sequences, whisper contexts) one request at a time; requests
 * beyond them wait in arrival order, and a waiting request whose signal aborts leaves the queue.
 */
export class Pool<Resource> {
  private readonly free: Resource[];
  private readonly waiters: Array<(resource: Resource) => void> = [];

  constructor(readonly resources: readonly Resource[]) {
    this.free = [...resources];
  }

  /** Rejects with the signal's reason (an Error), or `aborted`, when it aborts before a resource is free. */
  acquire(signal: AbortSignal, aborted: () => Error = () => abortReason(signal)): Promise<Resource> {
    const resource = this.free.pop();
    if (resource !== undefined) return Promise.resolve(resource);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(grant);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(aborted());
      };
      const grant = (granted: Resource): void => {
        signal.removeEventListener("abort", onAbort);
        resolve(granted);
      };
      if (signal.aborted) {
        reject(aborted());
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  release(resource: Resource): void {
    const next = this.waiters.shift();
    if (next) next(resource);
    else this.free.push(resource);
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("aborted");
}
