// The demo Express API: rows through PgBouncer (rw and ro), a Redis cache with a TTL, a rate limit shared by
// every instance through Redis, and jobs onto a BullMQ queue. One process per instance (systemd), each on its
// own port behind the host's nginx.
'use strict';
const crypto = require('crypto');
const os = require('os');
const express = require('express');
const Redis = require('ioredis');
const { Pool } = require('pg');
const { Queue } = require('bullmq');
const config = require('./config');

const pools = {
  rw: new Pool({ ...config.db('rw'), max: config.poolSize }),
  ro: new Pool({ ...config.db('ro'), max: config.poolSize }),
};
for (const pool of Object.values(pools)) pool.on('error', () => {}); // a failover drops idle clients
const redis = new Redis(config.redis);
const queue = new Queue(config.queue, { connection: config.redis });
const app = express();
app.set('trust proxy', 'loopback');

app.use((req, res, next) => {
  res.set('X-App-Revision', config.revision.slice(0, 12));
  next();
});

// Per client address and second, counted in Redis so that every instance on every host shares the limit.
app.use(async (req, res, next) => {
  if (req.path === '/health') return next();
  try {
    const key = `ratelimit:${req.ip}:${Math.floor(Date.now() / 1000)}`;
    const [[, count]] = await redis.multi().incr(key).expire(key, 2).exec();
    // the IETF draft's headers (as express-rate-limit sends them): what is left of this second's allowance
    res.set('RateLimit-Limit', String(config.rateLimit));
    res.set('RateLimit-Remaining', String(Math.max(0, config.rateLimit - count)));
    if (count > config.rateLimit) return res.status(429).json({ error: 'too many requests' });
  } catch (err) {
    // Redis away: serve rather than refuse
  }
  return next();
});

/** A read, tried once more on a fresh connection when PgBouncer dropped the pooled one (a failover). */
async function query(entry, sql, args = []) {
  try {
    return (await pools[entry].query(sql, args)).rows;
  } catch (err) {
    if (!/terminat|ECONNRESET|closed|Connection/i.test(String(err.message))) throw err;
    return (await pools[entry].query(sql, args)).rows;
  }
}

app.get('/health', (req, res) => res.json({ ok: true }));

// The request as the app sees it behind the load balancer: the scheme the client used and its address.
app.get('/client', (req, res) => res.json({ scheme: req.protocol, address: req.ip }));

app.get('/', async (req, res, next) => {
  try {
    let cached = await redis.get('school:greeting');
    if (cached === null) {
      cached = `cached at ${new Date().toISOString()}`;
      await redis.set('school:greeting', cached, 'EX', 60); // the roadmap's cache TTL
    }
    const rows = await query('ro', 'select id, name from items order by id limit 5');
    const [standby] = await query('rw', 'select pg_is_in_recovery() as standby');
    res.json({ app: 'express', host: os.hostname(), instance: config.port, rows, redis: cached,
      rw_is_standby: standby.standby, revision: config.revision });
  } catch (err) {
    next(err);
  }
});

app.get('/enqueue', async (req, res, next) => {
  try {
    const id = crypto.randomBytes(8).toString('hex');
    await queue.add('record', { id, payload: String(req.query.payload || '') }, { jobId: id, removeOnComplete: 1000 });
    res.json({ queued: id, queue: config.queue });
  } catch (err) {
    next(err);
  }
});

app.get('/job', async (req, res, next) => {
  try {
    const rows = await query('ro', 'select job_id, kind, payload, revision from jobs_done where job_id = $1',
      [String(req.query.id || '')]);
    if (!rows.length) return res.status(404).json({ error: 'not processed yet' });
    return res.json({ job: rows[0] });
  } catch (err) {
    return next(err);
  }
});

app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
  console.error(`express demo: ${err.message}`);
  res.status(500).json({ error: 'internal error' });
});

const server = app.listen(config.port, '127.0.0.1', () => console.log(`listening on ${config.port}`));
// systemd stops an instance with SIGTERM: finish the requests in flight, then exit
process.on('SIGTERM', () => server.close(() => process.exit(0)));
