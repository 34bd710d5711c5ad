// Served under /web/ through the load balancer (which passes the path on as it is); every response names the
// release that built it (REVISION, written by fabstack before the build).
const fs = require('fs');
const path = require('path');

const file = path.join(__dirname, 'REVISION');
const revision = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().slice(0, 12) : 'development';

module.exports = {
  basePath: '/web',
  // a self-contained server (.next/standalone) with only the files it needs: what fabstack ships
  output: 'standalone',
  poweredByHeader: false,
  // /web/ (the load balancer's route) is the front page
  trailingSlash: true,
  generateBuildId: async () => revision,
  async headers() {
    return [{ source: '/:path*', headers: [{ key: 'X-App-Revision', value: revision }] }];
  },
};
