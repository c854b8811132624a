#!/usr/bin/env node
// A service written in JavaScript, as a GWS client does it: log in with HTTP Basic on
// /api/v2/me (JSESSIONID cookie, CSRF token), then the official CometD JavaScript client (test-support/interop/gws-tail.js)
// (npm `cometd` + `cometd-nodejs-client`, pinned in package.json) on /api/v2/notifications
// with that cookie and token, subscribed to the calls and devices channels in one batch.
// Prints one JSON line {"channel":...,"data":...} per message on stdout and exits 0 after
// --count messages; exits 1 on failure or after --duration seconds.
//
// Usage: GWS_PASSWORD=... node gws-login-tail.js --gws URL --user NAME --count N [--duration SECS]
'use strict';

const { parseArgs } = require('util');
const path = require('path');

const { tail } = require(path.join(__dirname, '../../../../test-support/interop/gws-tail.js'));

const { values: args } = parseArgs({
    options: {
        gws: { type: 'string' },
        user: { type: 'string', default: 'agent' },
        count: { type: 'string' },
        duration: { type: 'string', default: '30' },
    },
});

function fail(message) {
    process.stderr.write(`gws-login-tail: ${message}\n`);
    process.exit(1);
}

if (!args.gws) fail('--gws is required');
const password = process.env.GWS_PASSWORD;
if (!password) fail('GWS_PASSWORD is not set');
const count = Number(args.count);
const duration = Number(args.duration);
if (!(count > 0) || !(duration > 0)) fail('--count and --duration must be positive');

async function login() {
    const basic = Buffer.from(`${args.user}:${password}`).toString('base64');
    const resp = await fetch(`${args.gws}/api/v2/me`, { headers: { Authorization: `Basic ${basic}` } });
    if (resp.status !== 200) fail(`login: HTTP ${resp.status}`);
    const setCookie = resp.headers.get('set-cookie') || '';
    const session = setCookie.split(';')[0];
    if (!session.startsWith('JSESSIONID=')) fail(`login: no JSESSIONID in ${setCookie}`);
    const headers = { Cookie: session };
    const csrfName = resp.headers.get('x-csrf-header');
    if (csrfName) headers[csrfName] = resp.headers.get(csrfName);
    return headers;
}

async function main() {
    const headers = await login();
    await tail({ url: `${args.gws}/api/v2/notifications`, headers, channels: ['/v2/me/calls', '/v2/me/devices'], count, duration, fail });
}

main().catch(e => fail(e && e.stack ? e.stack : String(e)));
