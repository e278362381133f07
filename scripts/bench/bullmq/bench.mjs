// BullMQ side of scripts/bench/jobs.sh: the same four measurements as `eventmill bench-jobs`, on
// the same Redis, printing the same RESULT lines with `.bullmq` instead of `.eventmill`.
//   node bench.mjs throughput|pickup|idle|retry [--jobs N] [--concurrency N] [--samples N] [--seconds N]
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
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

function worker(processor, concurrency) {
  return new Worker(name, processor, { connection, concurrency });
}

async function throughput() {
  const jobs = opt('jobs', 10000), concurrency = opt('concurrency', 50);
  for (let i = 0; i < jobs; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(jobs, i + 1000); j++) {
      batch.push({ name: 'noop', data: { i: j }, opts: { removeOnComplete: 1000 } });
    }
    await queue.addBulk(batch);
  }
  let count = 0, done;
  const finished = new Promise((r) => (done = r));
  const began = performance.now();
  const w = worker(async () => { if (++count === jobs) done(); }, concurrency);
  await finished;
  const rate = jobs / ((performance.now() - began) / 1000);
  await w.close();
  console.log(`RESULT jobs.noop.c${concurrency}.bullmq ${rate.toFixed(0)} jobs/s`);
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

const modes = { throughput, pickup, idle, retry };
if (!modes[mode]) {
  console.error(`usage: node bench.mjs ${Object.keys(modes).join('|')} [--jobs N] [--concurrency N] [--samples N] [--seconds N]`);
  process.exit(2);
}
try {
  await modes[mode]();
} finally {
  await queue.obliterate({ force: true });
  await queue.close();
}
