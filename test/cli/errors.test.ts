/** The CLI's failures: a bad command line gets the help (exit 2), a failing command one line (exit 1). */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cliEntryPath } from '../../cluster/local-cluster.js';

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [cliEntryPath(), ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });

describe('escapement CLI errors', () => {
  it('answers a command that fails with one line and exit 1, no stack trace', () => {
    const result = run(['replay', '--trace', '/no/such/trace.csv', '--model', 'mnist-cnn', '--out', '/tmp/escapement-never']);
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toMatch(/^escapement: ENOENT: no such file or directory, open '\/no\/such\/trace.csv'$/);
    const copies = run([
      'replay',
      '--trace',
      'traces/azure-llm-2023-conv.csv',
      '--model',
      'mnist-cnn',
      '--copies',
      '2',
      '--mapping',
      'functions',
      '--out',
      '/tmp/escapement-never',
    ]);
    expect(copies.status).toBe(1);
    expect(copies.stderr).toMatch(/has no functions to map onto copies; use --mapping zipf/);
  });

  it('refuses to serve without keys unless told --insecure, on loopback too, and a token given twice', () => {
    const open = run(['controller', '--host', '0.0.0.0', '--port', '0', '--client-port', '0', '--http-port', '-1']);
    expect(open.status).toBe(1);
    expect(open.stderr).toMatch(/listening on 0\.0\.0\.0 without --keys would let any peer .* give --keys DIR \(from escapement keys\), or --insecure/);
    const local = run(['controller', '--port', '0', '--client-port', '0', '--http-port', '-1']);
    expect(local.status).toBe(1);
    expect(local.stderr).toMatch(/listening on 127\.0\.0\.1 without --keys would let any process on this machine register a worker/);
    const twice = run(['controller', '--admin-token', 'a', '--admin-token-file', '/dev/null', '--port', '0', '--client-port', '0', '--http-port', '-1']);
    expect(twice.status).not.toBe(0);
    expect(twice.stderr).toMatch(/give --admin-token or --admin-token-file, not both/);
  });

  it('shows the stack with ESCAPEMENT_DEBUG=1', () => {
    const result = run(['replay', '--trace', '/no/such/trace.csv', '--model', 'mnist-cnn', '--out', '/tmp/escapement-never'], { ESCAPEMENT_DEBUG: '1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/\n\s+at /);
  });

  it('answers a bad command line with the help and exit 2', () => {
    const result = run(['replay', '--model', 'mnist-cnn']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/--trace/);
    expect(result.stderr).toMatch(/Missing required arguments: trace, out/);
  });

  it('refuses an SLO given both in ms and as a factor', () => {
    for (const command of ['replay', 'compare']) {
      const result = run([
        command,
        '--trace',
        'traces/azure-llm-2023-conv.csv',
        '--model',
        'fmnist-resnet',
        '--slo-ms',
        '40',
        '--slo-factor',
        '3',
        '--out',
        '/tmp/escapement-never',
        '--check-args',
      ]);
      expect(result.status, command).toBe(2);
      expect(result.stderr).toMatch(/mutually exclusive/);
    }
  });

  it('refuses a budget share or a safe oracle budget outside its range', () => {
    // refused while parsing, so --check-args refuses them too, and a command never starts
    const share = run(['controller', '--tuning-budget-share', '1.5', '--insecure', '--check-args']);
    expect(share.status).toBe(1);
    expect(share.stderr).toMatch(/--tuning-budget-share must be in \(0, 1\], not 1.5/);
    const compare = ['compare', '--trace', 'traces/azure-llm-2023-conv.csv', '--out', '/tmp/escapement-never', '--check-args'];
    const oracle = run([...compare, '--safe-oracle-budget', '1']);
    expect(oracle.status).toBe(1);
    expect(oracle.stderr).toMatch(/--safe-oracle-budget must be in \(0, 1\), not 1/);
    expect(run([...compare, '--tuning-budget-share', '0']).stderr).toMatch(/--tuning-budget-share must be in \(0, 1\], not 0/);
    expect(run([...compare, '--tuning-budget-share', '0.5', '--safe-oracle-budget', '0.0035']).stdout).toMatch(/arguments ok/);
    expect(run([...compare, '--reverse-variants']).stdout).toMatch(/arguments ok/);
  });
});
