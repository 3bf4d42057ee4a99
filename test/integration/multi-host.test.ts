/**
 * Controller and worker on two "hosts": network namespaces this test creates, joined by a veth
 * pair, with the worker's clock deliberately off by 123.456 ms. Exercises the clock-offset
 * estimation across hosts and a cut of the link between them. Skipped, with the reason, where the
 * machine does not allow creating namespaces (not root).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { cliEntryPath } from '../../cluster/local-cluster.js';

const id = process.pid % 200;
const CTL = `esc-ctl-${process.pid}`;
const WRK = `esc-wrk-${process.pid}`;
const CTL_IP = `10.231.${id}.1`;
const WRK_IP = `10.231.${id}.2`;
const VETH_C = `escc${id}`;
const VETH_W = `escw${id}`;

function sh(...args: string[]): number {
  return spawnSync(args[0]!, args.slice(1), { stdio: 'ignore' }).status ?? 1;
}

const probe = `esc-probe-${process.pid}`;
const canUseNamespaces = sh('ip', 'netns', 'add', probe) === 0 && sh('ip', 'netns', 'del', probe) === 0;
if (!canUseNamespaces) console.warn('multi-host test skipped: this machine does not let the test create network namespaces (needs root and iproute2)');

function inNamespace(ns: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, cliEntryPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function readyLine(child: ChildProcess, stderr: string[]): Promise<Record<string, string>> {
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const event = JSON.parse(line) as Record<string, string>;
        if (event.event === 'ready') resolve(event);
      } catch {
        // not an event
      }
    });
    child.once('exit', () => reject(new Error(`exited before ready:\n${stderr.join('')}`)));
  });
}

function submit(clientUrl: string, count: number, sloMs: number): Record<string, number> {
  const run = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      CTL,
      process.execPath,
      cliEntryPath(),
      'submit',
      '--controller',
      clientUrl,
      '--model',
      'mnist-cnn',
      '--count',
      String(count),
      '--rate',
      '100',
      '--slo-ms',
      String(sloMs),
      '--json',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return (JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { summary: { byStatus: Record<string, number> } }).summary.byStatus;
}

describe.skipIf(!canUseNamespaces)('controller and worker on separate hosts (network namespaces)', () => {
  let controller: ChildProcess;
  let worker: ChildProcess;
  let clientUrl = '';
  const workerLog: string[] = [];
  checkLeaks(() => []); // its processes are its own: the check covers the handles they leave

  beforeAll(async () => {
    for (const ns of [CTL, WRK]) expect(sh('ip', 'netns', 'add', ns)).toBe(0);
    expect(sh('ip', 'link', 'add', VETH_C, 'type', 'veth', 'peer', 'name', VETH_W)).toBe(0);
    expect(sh('ip', 'link', 'set', VETH_C, 'netns', CTL)).toBe(0);
    expect(sh('ip', 'link', 'set', VETH_W, 'netns', WRK)).toBe(0);
    for (const [ns, dev, ip] of [
      [CTL, VETH_C, CTL_IP],
      [WRK, VETH_W, WRK_IP],
    ] as const) {
      expect(sh('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', dev)).toBe(0);
      expect(sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', dev, 'up')).toBe(0);
      expect(sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')).toBe(0);
    }
    // --insecure: the namespaces' link is a private network only this test reaches
    controller = inNamespace(CTL, [
      'controller',
      '--host',
      CTL_IP,
      '--insecure',
      '--port',
      '0',
      '--client-port',
      '0',
      '--http-port',
      '-1',
      '--model-dir',
      'models',
      '--preload',
      'mnist-cnn',
      '--heartbeat-timeout-ms',
      '600',
    ]);
    const ready = await readyLine(controller, []);
    clientUrl = ready.clientUrl!;
    worker = inNamespace(WRK, [
      'worker',
      '--controller',
      ready.workerUrl!,
      '--id',
      'remote',
      '--simulate',
      '--model-dir',
      'models',
      '--clock-skew-ms',
      '123.456',
    ]);
    await readyLine(worker, workerLog);
  });

  afterAll(() => {
    for (const child of [worker, controller]) child?.kill('SIGKILL');
    for (const ns of [CTL, WRK]) sh('ip', 'netns', 'del', ns);
  });

  it("estimates the worker's clock offset to well under a millisecond and serves across hosts", async () => {
    await new Promise((r) => setTimeout(r, 500));
    const match = /clock offset to the controller (-?[\d.]+) ms/.exec(workerLog.join(''));
    expect(match).not.toBeNull();
    expect(Math.abs(Number(match![1]) + 123.456)).toBeLessThan(1);
    expect(submit(clientUrl, 40, 500)).toEqual({ OK: 40 });
  });

  it('answers every request while the link is cut, and the worker rejoins when it comes back', async () => {
    expect(sh('ip', 'netns', 'exec', WRK, 'ip', 'link', 'set', VETH_W, 'down')).toBe(0);
    await new Promise((r) => setTimeout(r, 1200)); // > heartbeat timeout: the worker is declared lost
    const during = submit(clientUrl, 20, 300);
    expect(Object.values(during).reduce((a, b) => a + b, 0)).toBe(20); // all answered, none lost
    expect(during.OK ?? 0).toBe(0);
    expect(sh('ip', 'netns', 'exec', WRK, 'ip', 'link', 'set', VETH_W, 'up')).toBe(0);
    let after: Record<string, number> = {};
    for (let i = 0; i < 20 && after.OK !== 10; i++) {
      await new Promise((r) => setTimeout(r, 500));
      after = submit(clientUrl, 10, 500);
    }
    expect(after).toEqual({ OK: 10 });
  });
});
