// Command line for the local control plane: start (detached) / stop / kubeconfig.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlPlane, type ControlPlaneState } from './controlplane.js';

const stateDir = path.join(process.env.EPS_CACHE_DIR ?? path.join(os.homedir(), '.cache/eps-probe-plugin'), 'controlplane-run');
const stateFile = path.join(stateDir, 'state.json');

function readState(): ControlPlaneState | undefined {
  return existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as ControlPlaneState) : undefined;
}

async function main(command: string | undefined): Promise<number> {
  switch (command) {
    case 'start': {
      if (readState()) {
        console.error(`already running; kubeconfig: ${readState()!.kubeconfig} (stop it with: make controlplane-stop)`);
        return 1;
      }
      mkdirSync(stateDir, { recursive: true });
      const plane = await ControlPlane.start({ detached: true, dir: stateDir });
      console.log(`control plane running at ${plane.state.server}`);
      console.log(`export KUBECONFIG=${plane.kubeconfig}`);
      return 0;
    }
    case 'stop': {
      const state = readState();
      if (!state) {
        console.error('no control plane is running');
        return 1;
      }
      ControlPlane.stopDetached(state);
      rmSync(stateDir, { recursive: true, force: true });
      console.log('stopped');
      return 0;
    }
    case 'kubeconfig': {
      const state = readState();
      if (!state) return 1;
      console.log(state.kubeconfig);
      return 0;
    }
    default:
      console.error('usage: cli.ts start | stop | kubeconfig');
      return 2;
  }
}

process.exitCode = await main(process.argv[2]);
