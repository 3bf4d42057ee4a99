import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    // Integration tests start real processes on a 2-core machine: be generous.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites each start several processes; running files one at a time keeps
    // them from starving each other on small machines.
    fileParallelism: false,
  },
});
