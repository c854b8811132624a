#!/usr/bin/env node
// The official CometD JavaScript client (npm `cometd` + `cometd-nodejs-client`, pinned in
// package.json) doing what `gws-cometd tail` does, as the benchmark's point of comparison:
// subscribe, print one JSON line {"channel":...,"data":...} per message on stdout, exit 0
// after --count messages (after a /meta/disconnect), exit 1 on failure or after --duration.
//
// Usage: node tests/interop/js-tail.js --url URL [--channel /x] [--count N] [--duration SECS]
'use strict';

const { parseArgs } = require('util');

const { values: args } = parseArgs({
    options: {
        url: { type: 'string' },
        channel: { type: 'string', default: '/v2/me/calls' },
        count: { type: 'string' },
        duration: { type: 'string', default: '120' },
    },
});

function fail(message) {
    process.stderr.write(`js-tail: ${message}\n`);
    process.exit(1);
}

if (!args.url) fail('--url is required');
const count = args.count === undefined ? Infinity : Number(args.count);
const duration = Number(args.duration);
if (!(count > 0) || !(duration > 0)) fail('--count and --duration must be positive');

async function main() {
    const { adapt } = await import('cometd-nodejs-client');
    const { CometD } = await import('cometd');
    adapt();

    const cometd = new CometD();
    // cometd-nodejs-server speaks long-polling only.
    cometd.unregisterTransport('websocket');
    cometd.configure({ url: args.url, logLevel: 'warn' });

    let received = 0;
    const timer = setTimeout(() => {
        fail(`${received} of ${count} messages arrived within ${duration} s`);
    }, duration * 1000);

    function onMessage(message) {
        process.stdout.write(JSON.stringify({ channel: message.channel, data: message.data }) + '\n');
        received += 1;
        if (received === count) {
            clearTimeout(timer);
            // Writes to a pipe may still be queued: exit once they are flushed.
            const exit = () => process.stdout.write('', () => process.exit(0));
            const done = setTimeout(exit, 2000);
            cometd.disconnect(() => {
                clearTimeout(done);
                exit();
            });
        }
    }

    cometd.handshake(reply => {
        if (!reply.successful) {
            fail(`handshake failed: ${JSON.stringify(reply)}`);
        }
        cometd.subscribe(args.channel, onMessage, sub => {
            if (!sub.successful) fail(`subscribe to ${args.channel} failed: ${JSON.stringify(sub)}`);
        });
    });
}

main().catch(e => fail(e && e.stack ? e.stack : String(e)));
