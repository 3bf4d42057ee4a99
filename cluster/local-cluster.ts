/**
 * Starts a real controller and real worker processes on loopback, as the demo, the benchmarks
 * and the integration tests need: ports are chosen by the OS at run time and reported by each
 * process on stdout as a JSON `ready` line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { EscapementClient } from '../client/escapement-client.js';
import { SERVING_NODE_FLAGS, WORKER_NODE_FLAGS } from './node-flags.js';

/** The compiled CLI, also when this module runs from TypeScript sources (tests). */
export function cliEntryPath(): string {
  const here = fileURLToPath(import.meta.url);
  // from cluster/local-cluster.ts (tests) or dist/cluster/local-cluster.js: the built CLI either way
  return here.endsWith('.ts')
    ? here.replace(/\/cluster\/local-cluster\.ts$/, '/dist/cli/escapement.js')
    : here.replace(/\/cluster\/local-cluster\.js$/, '/cli/escapement.js');
}

export interface LocalClusterOptions {
  numWorkers: number;
  modelDir: string;
  simulate?: boolean;
  preload?: string[];
  controllerArgs?: string[];
  workerArgs?: string[];
  /** Forward the processes' logs to this process's stderr. Default false (kept for errors). */
  verbose?: boolean;
  /**
   * Pin each worker's inference thread to a CPU of its own, worker i on CPU i mod the host's CPUs
   * (`worker --inference-cpus`). Default true. Unpinned, Linux at times stacked two workers' runs
   * on one core while the other idled, for milliseconds, and each run then took up to twice its
   * prediction (docs/benchmarks.md, "Two runs on one core"). Everything else (main threads, the controller, clients) still floats.
   */
  pinInference?: boolean;
}

interface Spawned {
  child: ChildProcess;
  ready: Promise<Record<string, unknown>>;
  logTail: string[];
}

function spawnCli(args: string[], verbose: boolean): Spawned {
  const roleFlags = args[0] === 'worker' ? WORKER_NODE_FLAGS : [];
  const child = spawn(process.execPath, [...SERVING_NODE_FLAGS, ...roleFlags, cliEntryPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logTail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (verbose) process.stderr.write(`${line}\n`);
    logTail.push(line);
    if (logTail.length > 50) logTail.shift();
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const event = JSON.parse(line) as Record<string, unknown>;
        if (event.event === 'ready') resolve(event);
      } catch {
        // not an event line
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`escapement ${args[0]} exited (${code ?? signal}) before it was ready:\n${logTail.join('\n')}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, logTail };
}

/** A local cluster on loopback is a machine its user trusts: --insecure, unless it was given --keys. */
function trustFlag(options: LocalClusterOptions): string[] {
  return options.controllerArgs?.includes('--keys') ? [] : ['--insecure'];
}

export class LocalCluster {
  readonly workers = new Map<string, Spawned>();
  private readonly inferenceCpus = new Map<string, number>();

  private constructor(
    private readonly options: LocalClusterOptions,
    private controller: Spawned,
    readonly workerUrl: string,
    readonly clientUrl: string,
    /** The controller's HTTP front door (Open Inference Protocol, /metrics). */
    readonly httpUrl: string,
  ) {}

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const args = [
      'controller',
      '--host',
      '127.0.0.1',
      ...trustFlag(options),
      '--port',
      '0',
      '--client-port',
      '0',
      '--http-port',
      '0',
      '--model-dir',
      options.modelDir,
      ...(options.controllerArgs ?? []),
    ];
    if (options.preload?.length) args.push('--preload', options.preload.join(','));
    const controller = spawnCli(args, options.verbose ?? false);
    const ready = await controller.ready;
    const cluster = new LocalCluster(options, controller, String(ready.workerUrl), String(ready.clientUrl), String(ready.httpUrl ?? ''));
    try {
      await Promise.all(Array.from({ length: options.numWorkers }, (_, i) => cluster.startWorker(`worker-${i}`)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** A worker's CPU for its inference thread: its own, in the order workers first started (a restart keeps it). */
  private inferenceCpu(workerId: string): number {
    let cpu = this.inferenceCpus.get(workerId);
    if (cpu === undefined) this.inferenceCpus.set(workerId, (cpu = this.inferenceCpus.size % availableParallelism()));
    return cpu;
  }

  async startWorker(workerId: string, extraArgs: string[] = []): Promise<void> {
    const args = [
      'worker',
      '--controller',
      this.workerUrl,
      '--id',
      workerId,
      '--model-dir',
      this.options.modelDir,
      ...(this.options.workerArgs ?? []),
      ...(this.options.pinInference !== false ? ['--inference-cpus', String(this.inferenceCpu(workerId))] : []),
      ...extraArgs,
    ];
    if (this.options.simulate) args.push('--simulate');
    const worker = spawnCli(args, this.options.verbose ?? false);
    this.workers.set(workerId, worker);
    await worker.ready;
  }

  /** Kills the controller (SIGKILL) and starts a new one on the same ports; workers stay up. */
  async restartController(): Promise<void> {
    const exited = new Promise((r) => this.controller.child.once('exit', r));
    this.controller.child.kill('SIGKILL');
    await exited;
    const port = (url: string) => url.slice(url.lastIndexOf(':') + 1);
    const args = [
      'controller',
      '--host',
      '127.0.0.1',
      ...trustFlag(this.options),
      '--port',
      port(this.workerUrl),
      '--client-port',
      port(this.clientUrl),
      '--http-port',
      this.httpUrl ? port(this.httpUrl) : '-1',
      '--model-dir',
      this.options.modelDir,
      ...(this.options.controllerArgs ?? []),
    ];
    if (this.options.preload?.length) args.push('--preload', this.options.preload.join(','));
    this.controller = spawnCli(args, this.options.verbose ?? false);
    await this.controller.ready;
  }

  /** Sends a signal to one worker (SIGKILL to crash it, SIGSTOP to freeze it). */
  signalWorker(workerId: string, signal: NodeJS.Signals): void {
    this.workers.get(workerId)?.child.kill(signal);
  }

  /** Waits until `numWorkers` workers are registered with every named model loaded. */
  async waitUntilServing(client: EscapementClient, models: string[], numWorkers = this.options.numWorkers, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await client.status();
      const serving = status.workers.filter((w) => models.every((m) => w.models.some((x) => x.name === m && x.state === 'loaded')));
      if (serving.length >= numWorkers) return;
      if (Date.now() > deadline)
        throw new Error(`only ${serving.length}/${numWorkers} workers serve ${models.join(',')} after ${timeoutMs} ms: ${JSON.stringify(status)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The processes running now, by role: `controller` and each worker's id. */
  processes(): { name: string; pid: number }[] {
    const live = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
    return [
      ...(live(this.controller.child) ? [{ name: 'controller', pid: this.controller.child.pid! }] : []),
      ...[...this.workers].filter(([, w]) => live(w.child)).map(([id, w]) => ({ name: id, pid: w.child.pid! })),
    ];
  }

  /** Every process this cluster started, including ones that have exited. */
  pids(): number[] {
    return [this.controller.child.pid!, ...[...this.workers.values()].map((w) => w.child.pid!)];
  }

  logTail(): string {
    return [`--- controller`, ...this.controller.logTail, ...[...this.workers].flatMap(([id, w]) => [`--- ${id}`, ...w.logTail])].join('\n');
  }

  /** Stops every process (SIGTERM, then SIGKILL after 3 s) and waits for them to exit. */
  async stop(): Promise<void> {
    const all = [...[...this.workers.values()].map((w) => w.child), this.controller.child];
    await Promise.all(
      all.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
            child.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            child.kill('SIGCONT');
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
