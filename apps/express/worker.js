// The BullMQ worker (run by Supervisor): jobs from Redis into PostgreSQL through PgBouncer's rw entry, each
// recorded once with the release that ran it.
'use strict';
const { Pool } = require('pg');
const { Worker } = require('bullmq');
const config = require('./config');

const pool = new Pool({ ...config.db('rw'), max: 2 });
const worker = new Worker(config.queue, async (job) => {
  await pool.query('insert into jobs_done (job_id, kind, payload, revision) values ($1, $2, $3, $4) '
    + 'on conflict (job_id) do nothing', [job.data.id, 'express', job.data.payload, config.revision]);
}, { connection: { ...config.redis, maxRetriesPerRequest: null }, concurrency: 4 });

// Supervisor stops a worker with SIGTERM: let the running jobs finish first
process.on('SIGTERM', async () => {
  await worker.close();
  await pool.end();
  process.exit(0);
});
