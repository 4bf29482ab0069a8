// vitest global setup of the e2e project: one real control plane shared by all e2e files.
// Tests isolate themselves with a fresh namespace each (namespace deletion never finishes here).
import type { TestProject } from 'vitest/node';
import { ControlPlane, type ControlPlaneState } from './controlplane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneState;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const plane = await ControlPlane.start();
  console.log(`[e2e] control plane ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ${plane.state.server}`);
  project.provide('controlPlane', plane.state);
  return () => plane.stop();
}
