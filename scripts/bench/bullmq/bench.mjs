// Node BullMQ side of scripts/bench/jobs.sh: the same measurements as `eventmill bench-jobs`, on
// the same Redis, printing the same RESULT / CPU / CEILING lines with `.bullmq` instead of `.eventmill`.
//   node bench.mjs throughput|pickup|idle|retry|bulk|delayed [--jobs N] [--concurrency N] [--samples N]
//                  [--seconds N] [--batch N]
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [mode, ...rest] = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
const url = new URL(process.env.EVENTMILL_REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const name = `bench-${Math.random().toString(16).slice(2, 10)}`;
const queue = new Queue(name, { connection });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const RETRY_BACKOFF = 200;
const CONCURRENCY = 50;
const DELAYED_LEAD = 3000;
const redis = new IORedis(connection);

// Waits until nothing is waiting or active: the last job's completion is recorded in Redis.
async function drained() {
  const key = (k) => `bull:${name}:${k}`;
  const deadline = performance.now() + 60000;
  for (;;) {
    const r = await redis.multi().llen(key('wait')).llen(key('active')).zcard(key('prioritized')).zcard(key('delayed')).exec();
    if (r.reduce((s, [, n]) => s + n, 0) === 0) return;
    if (performance.now() > deadline) throw new Error('jobs still waiting or active after 60 s');
  }
}

// utime + stime (clock ticks) of /proc/<pid>/stat.
function ticks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

// CPU of this process (the worker) and of Redis (BENCH_REDIS_PID) at one moment.
const cpuNow = () => ({ worker: ticks('self'), redis: process.env.BENCH_REDIS_PID ? ticks(process.env.BENCH_REDIS_PID) : null });

// The same CPU / CEILING lines as `eventmill bench-jobs`.
function printCpu(before, metric, jobs) {
  const after = cpuNow();
  if (before.redis === null || after.redis === null) return;
  const tickUs = 1e6 / Number(process.env.BENCH_CLK_TCK || 100);
  const worker = ((after.worker - before.worker) * tickUs) / jobs, r = ((after.redis - before.redis) * tickUs) / jobs;
  console.log(`CPU ${metric}.bullmq eventmill=${worker.toFixed(2)} redis=${r.toFixed(2)} postgres=0`);
  if (r > 0) {
    console.log(`RESULT ${metric}.redis_core.bullmq ${(1e6 / r).toFixed(0)} jobs/s`);
    console.log(`CEILING ${metric}.bullmq ${metric}.redis_core.bullmq`);
  }
}

async function usedMemory() {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
}

// Adds `jobs` no-op jobs, `batch` at a time (addBulk), with `opts()` each.
async function addJobs(jobs, batch, opts) {
  for (let i = 0; i < jobs; i += batch) {
    const bulk = [];
    for (let j = i; j < Math.min(jobs, i + batch); j++) bulk.push({ name: 'noop', data: { i: j }, opts: opts() });
    await queue.addBulk(bulk);
  }
}

function worker(processor, concurrency) {
  return new Worker(name, processor, { connection, concurrency });
}

async function throughput() {
  const jobs = opt('jobs', 10000), concurrency = opt('concurrency', 50);
  await addJobs(jobs, 1000, () => ({ removeOnComplete: 1000 }));
  let count = 0, done;
  const finished = new Promise((r) => (done = r));
  const cpu = cpuNow();
  const began = performance.now();
  const w = worker(async () => { if (++count === jobs) done(); }, concurrency);
  await finished;
  await drained();
  const rate = jobs / ((performance.now() - began) / 1000);
  printCpu(cpu, `jobs.noop.c${concurrency}`, jobs);
  await w.close();
  console.log(`RESULT jobs.noop.c${concurrency}.bullmq ${rate.toFixed(0)} jobs/s`);
}

async function bulk() {
  const jobs = opt('jobs', 100000), batch = opt('batch', 1000);
  const empty = await usedMemory();
  const began = performance.now();
  await addJobs(jobs, batch, () => ({})); // every completed job kept (no removeOnComplete)
  const rate = jobs / ((performance.now() - began) / 1000);
  const waiting = (await usedMemory()) - empty;
  console.log(`RESULT jobs.bulk_enqueue.bullmq ${rate.toFixed(0)} jobs/s`);
  console.log(`RESULT jobs.memory.waiting.bullmq ${(waiting / jobs).toFixed(0)} bytes`);
  let count = 0, done;
  const finished = new Promise((r) => (done = r));
  const cpu = cpuNow();
  const began2 = performance.now();
  const w = worker(async () => { if (++count === jobs) done(); }, CONCURRENCY);
  await finished;
  await drained();
  const drainRate = jobs / ((performance.now() - began2) / 1000);
  printCpu(cpu, `jobs.backlog.c${CONCURRENCY}`, jobs);
  await w.close();
  console.log(`RESULT jobs.backlog.c${CONCURRENCY}.bullmq ${drainRate.toFixed(0)} jobs/s`);
  const completed = (await usedMemory()) - empty;
  console.log(`RESULT jobs.memory.completed.bullmq ${(completed / jobs).toFixed(0)} bytes`);
}

async function delayed() {
  const jobs = opt('jobs', 10000), batch = opt('batch', 1000);
  const started = [];
  let done;
  const finished = new Promise((r) => (done = r));
  const w = worker(async () => { started.push(performance.now()); if (started.length === jobs) done(); }, CONCURRENCY);
  await w.waitUntilReady();
  await sleep(300);
  const dueMs = Date.now() + DELAYED_LEAD, due = performance.now() + DELAYED_LEAD;
  for (let i = 0; i < jobs; i += batch) {
    const delay = Math.max(0, dueMs - Date.now());
    const bulk = [];
    for (let j = i; j < Math.min(jobs, i + batch); j++) bulk.push({ name: 'noop', data: { i: j }, opts: { delay } });
    await queue.addBulk(bulk);
  }
  if (performance.now() >= due) throw new Error(`enqueueing ${jobs} delayed jobs took longer than ${DELAYED_LEAD} ms`);
  await finished;
  await w.close();
  const late = started.map((t) => Math.max(0, t - due)).sort((a, b) => a - b);
  console.log(`RESULT jobs.delayed_late.p50.bullmq ${late[Math.floor(late.length / 2)].toFixed(1)} ms`);
  console.log(`RESULT jobs.delayed_late.max.bullmq ${late[late.length - 1].toFixed(1)} ms`);
}

async function pickup() {
  const samples = opt('samples', 50);
  const started = new Map();
  const w = worker(async (job) => { started.set(job.id, performance.now()); }, 1);
  await w.waitUntilReady();
  await sleep(300);
  const pickups = [];
  for (let i = 0; i < samples; i++) {
    await sleep(20 + Math.floor(Math.random() * 100));
    const asked = performance.now();
    const job = await queue.add('noop', {}, { removeOnComplete: 1000 });
    while (!started.has(job.id)) await sleep(0.2);
    pickups.push(started.get(job.id) - asked);
  }
  await w.close();
  pickups.sort((a, b) => a - b);
  console.log(`RESULT jobs.pickup.p50.bullmq ${pickups[Math.floor(pickups.length / 2)].toFixed(2)} ms`);
  console.log(`RESULT jobs.pickup.p95.bullmq ${pickups[Math.ceil(pickups.length * 0.95) - 1].toFixed(2)} ms`);
}

async function commands(client) {
  const info = await client.info('commandstats');
  return info.split('\n').map((l) => /calls=(\d+)/.exec(l)).filter(Boolean).reduce((s, m) => s + Number(m[1]), 0);
}

async function idle() {
  const seconds = opt('seconds', 5);
  const w = worker(async () => {}, 50);
  await w.waitUntilReady();
  await sleep(1000);
  const client = new IORedis(connection);
  const before = await commands(client);
  await sleep(seconds * 1000);
  const after = await commands(client);
  client.disconnect();
  await w.close();
  console.log(`RESULT jobs.idle_commands.bullmq ${((after - before - 1) / seconds).toFixed(2)} commands/s`);
}

async function retry() {
  const samples = opt('samples', 20);
  const failedAt = new Map(), late = [];
  let done;
  const finished = new Promise((r) => (done = r));
  const w = worker(async (job) => {
    const now = performance.now();
    if (job.attemptsMade === 0) {
      failedAt.set(job.id, performance.now());
      throw new Error('first attempt fails');
    }
    late.push(now - failedAt.get(job.id) - RETRY_BACKOFF);
    if (late.length === samples) done();
  }, 4);
  await w.waitUntilReady();
  await sleep(300);
  for (let i = 0; i < samples; i++) {
    await queue.add('noop', {}, { attempts: 2, backoff: { type: 'fixed', delay: RETRY_BACKOFF }, removeOnComplete: 1000 });
    await sleep(37);
  }
  await finished;
  await w.close();
  late.sort((a, b) => a - b);
  console.log(`RESULT jobs.retry_late.p50.bullmq ${late[Math.floor(late.length / 2)].toFixed(1)} ms`);
  console.log(`RESULT jobs.retry_late.max.bullmq ${late[late.length - 1].toFixed(1)} ms`);
}

const modes = { throughput, pickup, idle, retry, bulk, delayed };
if (!modes[mode]) {
  console.error(`usage: node bench.mjs ${Object.keys(modes).join('|')} [--jobs N] [--concurrency N] [--samples N] [--seconds N] [--batch N]`);
  process.exit(2);
}
try {
  await modes[mode]();
} finally {
  await queue.obliterate({ force: true });
  await queue.close();
  redis.disconnect();
}
