// `eps-probe-plugin probe`: probe addresses once from this node and print what each probe saw.
import { parseArgs } from 'node:util';
import pLimit from 'p-limit';
import { createLogger } from '../log.js';
import {
  canonicalAddress,
  HalfOpenProber,
  IcmpPinger,
  parseAllowList,
  tcpConnect,
  type IcmpTransport,
  type ProbeMode,
  type ProbeOutcome,
} from '../probe/index.js';
import { DEFAULT_PROBE_OPTIONS } from '../probe/options.js';

const USAGE = `Usage: eps-probe-plugin probe [--tcp|--icmp|--both] [--half-open] [--timeout ms] [--json] [--allow CIDR]... ADDRESS[:PORT]...

Probes each address once and prints address, port, protocol, result and duration.
IPv6 with a port is written [addr]:port. In --tcp mode (the default) an address without a port is
pinged instead. --half-open probes TCP ports as probe.tcpProbe: half-open does (a SYN from a raw
socket; needs NET_RAW like ICMP) instead of with connect(). Results: success, refused (TCP RST: the host is reachable), failure, timeout, error
(the probe could not run here, e.g. no raw-socket permission).
Without --allow every address may be probed except loopback, link-local, multicast and unspecified
ones; --allow 127.0.0.0/8 (for example) permits those explicitly.
Exit status: 0 every target answered, 1 some did not, 2 usage error.
`;

/** Probes the CLI runs at once; enough for a few hundred addresses, few enough for any fd limit. */
const CLI_CONCURRENCY = 64;

interface Endpoint {
  address: string;
  port?: number;
}

interface Row extends ProbeOutcome {
  address: string;
  port?: number;
}

class UsageError extends Error {}

/** Parses `ADDRESS`, `ADDRESS:PORT`, `[IPv6]` or `[IPv6]:PORT`. */
function parseEndpoint(text: string): Endpoint {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const hostPort = /^([^:]+):(\d+)$/.exec(text);
  const [host, portText] = bracketed ? [bracketed[1]!, bracketed[2]] : hostPort ? [hostPort[1]!, hostPort[2]] : [text, undefined];
  const address = canonicalAddress(host);
  if (address === undefined) throw new UsageError(`"${text}" is not an IP address (IPv6 with a port: [addr]:port)`);
  if (portText === undefined) return { address };
  const port = Number(portText);
  if (port < 1 || port > 65_535) throw new UsageError(`"${text}": port must be 1-65535`);
  return { address, port };
}

function modeOf(values: { tcp?: boolean; icmp?: boolean; both?: boolean }): ProbeMode {
  const chosen = (['tcp', 'icmp', 'both'] as const).filter((mode) => values[mode]);
  if (chosen.length > 1) throw new UsageError('choose one of --tcp, --icmp, --both');
  return chosen[0] ?? 'tcp';
}

function formatTable(rows: readonly Row[]): string {
  const header = ['ADDRESS', 'PORT', 'PROTOCOL', 'RESULT', 'MS', 'ERROR'];
  const lines = rows.map((row) => [
    row.address,
    row.port === undefined ? '-' : String(row.port),
    row.protocol,
    row.result,
    row.durationMs.toFixed(1),
    row.error ?? '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column]!.length)));
  return [header, ...lines].map((line) => line.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export async function runProbeCommand(argv: string[]): Promise<number> {
  let parsed;
  let mode: ProbeMode;
  let endpoints: Endpoint[];
  let timeoutMs: number;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        tcp: { type: 'boolean' },
        icmp: { type: 'boolean' },
        both: { type: 'boolean' },
        'half-open': { type: 'boolean' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        allow: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (parsed.values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    mode = modeOf(parsed.values);
    timeoutMs = Number(parsed.values.timeout ?? DEFAULT_PROBE_OPTIONS.timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError('--timeout must be a positive integer (ms)');
    if (parsed.positionals.length === 0) throw new UsageError('no address given');
    endpoints = parsed.positionals.map(parseEndpoint);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }

  let allowList;
  try {
    allowList = parseAllowList(parsed.values.allow ?? ['0.0.0.0/0', '::/0']);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const refused = endpoints.map((e) => ({ e, decision: allowList.check(e.address) })).filter(({ decision }) => !decision.allowed);
  if (refused.length > 0) {
    for (const { e, decision } of refused) {
      process.stderr.write(`refusing ${e.address}: ${decision.allowed ? '' : decision.reason}\n`);
    }
    return 2;
  }

  const needsIcmp = mode !== 'tcp' || endpoints.some((e) => e.port === undefined);
  let icmp: IcmpTransport | undefined;
  let icmpError = '';
  if (needsIcmp) {
    try {
      icmp = new IcmpPinger(createLogger({ level: 'warn', destination: process.stderr }));
    } catch (err) {
      icmpError = (err as Error).message;
      process.stderr.write(`ICMP unavailable: ${icmpError}\n`);
    }
  }

  let halfOpen: HalfOpenProber | undefined;
  if (parsed.values['half-open'] && mode !== 'icmp') {
    try {
      halfOpen = new HalfOpenProber();
    } catch (err) {
      process.stderr.write(`half-open TCP probes unavailable: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const probeTcp = (address: string, port: number): Promise<ProbeOutcome> => (halfOpen ? halfOpen.probePort(address, port, timeoutMs) : tcpConnect(address, port, timeoutMs));

  const limit = pLimit(CLI_CONCURRENCY);
  const ping = (address: string): Promise<ProbeOutcome> =>
    icmp ? icmp.ping(address, timeoutMs) : Promise.resolve({ protocol: 'icmp', result: 'error', durationMs: 0, error: icmpError });
  const jobs: Promise<Row>[] = [];
  const pinged = new Set<string>();
  for (const endpoint of endpoints) {
    const { address, port } = endpoint;
    if (port !== undefined && mode !== 'icmp') jobs.push(limit(async () => ({ address, port, ...(await probeTcp(address, port)) })));
    // One ping per address, even when several of its ports are listed.
    if ((port === undefined || mode !== 'tcp') && !pinged.has(address)) {
      pinged.add(address);
      jobs.push(limit(async () => ({ address, ...(await ping(address)) })));
    }
  }
  const rows = await Promise.all(jobs);
  icmp?.close();
  await halfOpen?.close();

  if (parsed.values.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else process.stdout.write(formatTable(rows));
  return rows.every((row) => row.result === 'success' || row.result === 'refused') ? 0 : 1;
}
