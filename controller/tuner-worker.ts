/**
 * The threshold search's own thread (see tuner-thread.ts): answers each search with its jobs'
 * `tuneThresholds` results, in order (undefined if one throws), as a message.
 */
import { parentPort } from 'node:worker_threads';
import type { SearchJob } from './exit-monitor.js';
import { searchInProcess } from './tuner-thread.js';

parentPort!.on('message', (request: { seq: number; jobs: SearchJob[] }) => {
  parentPort!.postMessage({ seq: request.seq, results: searchInProcess(request.jobs) });
});
