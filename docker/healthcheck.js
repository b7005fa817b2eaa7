// The image's HEALTHCHECK: exit 0 when /readyz answers 200. It asks the metrics listener (plain
// HTTP, when OPENDPS_METRICS_PORT is set) and the HTTPS listener, and is healthy if either is ready.
// No curl in a slim image, so node itself asks.
'use strict';
const http = require('node:http');
const https = require('node:https');

const env = process.env;
const timeout = Number(env.OPENDPS_HEALTHCHECK_TIMEOUT_MS || 3000);
const probes = [];
if (env.OPENDPS_METRICS_PORT) probes.push({ lib: http, port: Number(env.OPENDPS_METRICS_PORT) });
probes.push({ lib: https, port: Number(env.OPENDPS_HTTPS_PORT || 8443), rejectUnauthorized: false });

function ready({ lib, port, rejectUnauthorized }) {
  return new Promise((resolve) => {
    const request = lib.get({ host: '127.0.0.1', port, path: '/readyz', timeout, rejectUnauthorized }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

Promise.all(probes.map(ready)).then((answers) => process.exit(answers.includes(true) ? 0 : 1));
