// Release hook (once per release, before the switch): one row per release of this app.
'use strict';
const os = require('os');
const { Client } = require('pg');
const config = require('./config');

(async () => {
  const client = new Client(config.db('rw'));
  await client.connect();
  await client.query('insert into app_releases (app, revision, host) values ($1, $2, $3)',
    ['express', config.revision, os.hostname()]);
  await client.end();
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
