// Settings from the environment (systemd's EnvironmentFile, written by fabstack's node_app role) and the release.
'use strict';
const fs = require('fs');
const path = require('path');

// Unset variables are read from the env file fabstack writes (systemd passes it to instances; hooks and
// workers read it here).
const envFile = process.env.FABSTACK_APP_ENV || '/etc/fabstack/express.env';
if (fs.existsSync(envFile)) {
  for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match && process.env[match[1]] === undefined) process.env[match[1]] = match[2];
  }
}

const revisionFile = path.join(__dirname, 'REVISION');
module.exports = {
  // the commit this release was built from (fabstack writes REVISION into every artifact)
  revision: fs.existsSync(revisionFile) ? fs.readFileSync(revisionFile, 'utf8').trim() : 'development',
  port: Number(process.env.PORT || 3000),
  // PgBouncer's entries: rw reaches the primary, ro the replicas
  db: (entry) => ({
    host: process.env.DB_HOST, port: Number(process.env.DB_PORT || 6432), user: process.env.DB_USER,
    password: process.env.DB_PASSWORD, database: entry === 'rw' ? process.env.DB_RW_NAME : process.env.DB_RO_NAME,
  }),
  poolSize: Number(process.env.DB_POOL_SIZE || 5),
  redis: {
    host: process.env.REDIS_HOST || '127.0.0.1',
    port: Number(process.env.REDIS_PORT || 6379),
    username: process.env.REDIS_USER,
    password: process.env.REDIS_PASSWORD,
    // the app's Redis user may not run INFO (fabstack's ACL refuses the dangerous commands to apps): no ready
    // check, and BullMQ takes the server's version on trust
    enableReadyCheck: false,
    skipVersionCheck: true,
  },
  // requests per client address per second, shared by every instance through Redis
  rateLimit: Number(process.env.RATE_LIMIT_PER_SECOND || 200),
  queue: 'school-jobs',
};
