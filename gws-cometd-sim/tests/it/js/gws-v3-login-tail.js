#!/usr/bin/env node
// A Workspace API v3 client in JavaScript: the password grant on /auth/v3/oauth/token (client
// id and secret as HTTP Basic), initialize-workspace with the bearer token (the
// WORKSPACE_SESSIONID cookie kept), then the official CometD JavaScript client (npm `cometd` +
// `cometd-nodejs-client`, pinned in package.json) on /workspace/v3/notifications with that
// cookie, subscribed to the initialization and voice channels in one batch.
// Prints one JSON line {"channel":...,"data":...} per message on stdout and exits 0 after
// --count messages; exits 1 on failure or after --duration seconds. Prints READY on stderr
// once both subscriptions succeeded.
//
// Usage: GWS_PASSWORD=... node gws-v3-login-tail.js --gws URL --user NAME --count N [--duration SECS]
'use strict';

const { parseArgs } = require('util');
const path = require('path');

const { tail } = require(path.join(__dirname, '../../../../test-support/interop/gws-tail.js'));

const { values: args } = parseArgs({
    options: {
        gws: { type: 'string' },
        user: { type: 'string', default: '\\agent' },
        count: { type: 'string' },
        duration: { type: 'string', default: '30' },
    },
});

function fail(message) {
    process.stderr.write(`gws-v3-login-tail: ${message}\n`);
    process.exit(1);
}

if (!args.gws) fail('--gws is required');
const password = process.env.GWS_PASSWORD;
if (!password) fail('GWS_PASSWORD is not set');
const count = Number(args.count);
const duration = Number(args.duration);
if (!(count > 0) || !(duration > 0)) fail('--count and --duration must be positive');

async function login() {
    const client = Buffer.from('external_api_client:secret').toString('base64');
    const form = new URLSearchParams({ grant_type: 'password', username: args.user, password });
    const token = await fetch(`${args.gws}/auth/v3/oauth/token`, {
        method: 'POST',
        headers: { Authorization: `Basic ${client}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
    });
    if (token.status !== 200) fail(`token: HTTP ${token.status}`);
    const { access_token: accessToken } = await token.json();
    const init = await fetch(`${args.gws}/workspace/v3/initialize-workspace`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${accessToken}` },
    });
    if (init.status !== 200) fail(`initialize-workspace: HTTP ${init.status}`);
    const setCookie = init.headers.get('set-cookie') || '';
    const session = setCookie.split(';')[0];
    if (!session.startsWith('WORKSPACE_SESSIONID=')) fail(`no WORKSPACE_SESSIONID in ${setCookie}`);
    return { Cookie: session };
}

async function main() {
    const headers = await login();
    await tail({ url: `${args.gws}/workspace/v3/notifications`, headers, channels: ['/workspace/v3/initialization', '/workspace/v3/voice'], count, duration, fail });
}

main().catch(e => fail(e && e.stack ? e.stack : String(e)));
