#!/usr/bin/env node
// The official CometD Node.js server (npm `cometd-nodejs-server`, pinned in package.json) on
// 127.0.0.1, for the interop tests and the `tail` benchmark.
//
// Usage: node tests/interop/cometd-server.js [--port N] [--timeout MS] [--interval MS]
//                                            [--max-interval MS] [--ack]
//                                            [--log-level info|debug] [--no-stdin-exit]
// Port 0 (the default, or env COMETD_PORT) picks a free port. When ready, prints exactly one
// line `LISTENING <port>` on stdout; everything else goes to stderr.
//
// `--ack` registers the package's AcknowledgedMessagesExtension
// (`cometd-nodejs-server/ack-extension`): clients that handshake with `ext:{ack:true}` get
// `ext:{ack:true}` back, every /meta/connect reply carries `ext:{ack:<batch>}`, and messages
// are delivered (again) on connect replies only until a connect acknowledges their batch.
// Without it the server ignores `ext.ack` and a lost reply is lost.
//
// Bayeux is served at /cometd (and /cometd/<anything>, for clients that append /handshake,
// /connect, ...). A control API on the same server drives the tests:
//   POST /control/publish?channel=/x&count=N&size=300[&start=K][&big=I&bigSize=B]
//        publishes N server-side messages {"seq":i,"pad":"..."} in order, i = K..K+N (K
//        defaults to 0), each data object serialized to `size` bytes (or just larger when
//        `size` is too small); the message with seq I, if any, is `bigSize` bytes instead.
//        With a JSON request body, publishes that body as the data instead, N times
//        (default 1). Replies {"published":N}.
//   POST /control/forget
//        removes every session as an expiry would, and wakes a held /meta/connect so its
//        client comes back at once and gets `402::session_unknown`. Replies {"forgotten":N}.
//   GET  /control/sessions
//        {"sessions":N,"ids":[...],"channels":{"/x":subscribers},"held":N,"stats":{...}}:
//        `held` counts the /meta/connect requests being held now; `stats` counts the
//        non-empty queue drains (replies carrying messages) and the largest one.
//   GET  /control/received?channel=/x
//        data of the messages clients published on /x, in arrival order (at most 100 000).
//   GET  /control/options
//        the effective timeout, interval and maxInterval, and whether `ack` is on.
// Exits on SIGTERM/SIGINT and when stdin closes, so a crashed test never leaves it running.
'use strict';

const http = require('http');
const { parseArgs } = require('util');
const cometd = require('cometd-nodejs-server');

// Server logs go to stderr: stdout carries only the LISTENING line.
console.log = console.error;

const { values: args } = parseArgs({
    options: {
        port: { type: 'string' },
        timeout: { type: 'string' },
        interval: { type: 'string' },
        'max-interval': { type: 'string' },
        ack: { type: 'boolean', default: false },
        'log-level': { type: 'string', default: 'info' },
        'no-stdin-exit': { type: 'boolean', default: false },
    },
});

function intArg(name, text) {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) {
        console.error(`cometd-server: --${name} must be a non-negative integer, got ${text}`);
        process.exit(2);
    }
    return n;
}

const port = intArg('port', args.port ?? process.env.COMETD_PORT ?? '0');
const options = { logLevel: args['log-level'] };
if (args.timeout !== undefined) options.timeout = intArg('timeout', args.timeout);
if (args.interval !== undefined) options.interval = intArg('interval', args.interval);
if (args['max-interval'] !== undefined) options.maxInterval = intArg('max-interval', args['max-interval']);

const server = cometd.createCometDServer(options);
if (args.ack) {
    // A sub-path of the package (it has no `exports` map), as its own tests load it.
    const { AcknowledgedMessagesExtension } = require('cometd-nodejs-server/ack-extension');
    server.addExtension(new AcknowledgedMessagesExtension());
}

// The server keeps its sessions private; track them through its public events.
const sessions = new Map();
const stats = { drains: 0, messages: 0, maxBatch: 0 };
server.addListener('sessionAdded', session => {
    sessions.set(session.id, session);
    session.addListener('queueDrain', (s, queue) => {
        if (queue.length > 0) {
            stats.drains += 1;
            stats.messages += queue.length;
            stats.maxBatch = Math.max(stats.maxBatch, queue.length);
        }
    });
});
server.addListener('sessionRemoved', session => {
    sessions.delete(session.id);
});

// What clients publish, per channel, so tests can check a client-side publish arrived.
const MAX_RECEIVED = 100000;
const received = new Map();
server.addExtension({
    incoming: (srv, session, message, callback) => {
        const ch = message.channel;
        if (typeof ch === 'string' && !ch.startsWith('/meta/') && message.data !== undefined) {
            let list = received.get(ch);
            if (!list) {
                list = [];
                received.set(ch, list);
            }
            if (list.length < MAX_RECEIVED) list.push(message.data);
        }
        callback(undefined, true);
    },
});

function reply(response, status, body) {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    response.end(text);
}

function paddedData(seq, size) {
    const base = JSON.stringify({ seq, pad: '' }).length;
    return { seq, pad: 'x'.repeat(Math.max(0, size - base)) };
}

function publish(url, body, response) {
    const channel = url.searchParams.get('channel');
    if (!channel || !channel.startsWith('/') || channel.startsWith('/meta/') || channel.startsWith('/service/')) {
        return reply(response, 400, { error: 'channel must be a broadcast channel such as /x' });
    }
    let data = null;
    if (body.length > 0) {
        try {
            data = JSON.parse(body);
        } catch (e) {
            return reply(response, 400, { error: 'body is not JSON: ' + e.message });
        }
    }
    const number = (name, fallback) => Number(url.searchParams.get(name) ?? fallback);
    const count = number('count', '1');
    const size = number('size', '300');
    const start = number('start', '0');
    const big = number('big', '-1');
    const bigSize = number('bigSize', '0');
    const natural = n => Number.isInteger(n) && n >= 0;
    if (![count, size, start, bigSize].every(natural) || !Number.isInteger(big)) {
        return reply(response, 400, { error: 'count, size, start, big and bigSize must be non-negative integers' });
    }
    const ch = server.createServerChannel(channel);
    for (let seq = start; seq < start + count; ++seq) {
        ch.publish(null, data === null ? paddedData(seq, seq === big ? bigSize : size) : data);
    }
    reply(response, 200, { published: count });
}

function forget(response) {
    const all = [...sessions.values()];
    for (const session of all) {
        // As the sweeper does on expiry (timeout = true), but without waiting for it.
        server._removeServerSession(session, true);
        // A held /meta/connect would otherwise answer only after `timeout`; wake it so the
        // client's next request finds its session gone.
        if (session._scheduler) session._scheduler.resume();
    }
    reply(response, 200, { forgotten: all.length });
}

function sessionsInfo(response) {
    const channels = {};
    for (const session of sessions.values()) {
        for (const ch of session.subscriptions) {
            channels[ch.name] = (channels[ch.name] || 0) + 1;
        }
    }
    // Sessions whose /meta/connect the server is holding right now.
    const held = [...sessions.values()].filter(session => session._scheduler).length;
    reply(response, 200, { sessions: sessions.size, ids: [...sessions.keys()], channels, held, stats });
}

function control(request, response, url) {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', chunk => { body += chunk; });
    request.on('end', () => {
        const route = request.method + ' ' + url.pathname;
        switch (route) {
            case 'POST /control/publish': return publish(url, body, response);
            case 'POST /control/forget': return forget(response);
            case 'GET /control/sessions': return sessionsInfo(response);
            case 'GET /control/received':
                return reply(response, 200, received.get(url.searchParams.get('channel')) || []);
            case 'GET /control/options': {
                const o = server.options;
                return reply(response, 200, {
                    timeout: o.timeout ?? 30000,
                    interval: o.interval ?? 0,
                    maxInterval: o.maxInterval ?? 10000,
                    ack: args.ack,
                });
            }
            default: return reply(response, 404, { error: 'no such control route: ' + route });
        }
    });
}

const httpServer = http.createServer((request, response) => {
    const url = new URL(request.url, 'http://127.0.0.1');
    if (url.pathname === '/cometd' || url.pathname.startsWith('/cometd/')) {
        server.handle(request, response);
    } else if (url.pathname.startsWith('/control/')) {
        control(request, response, url);
    } else {
        reply(response, 404, { error: 'not found: ' + url.pathname });
    }
});
// Node's own request timeout must outlast a held /meta/connect.
httpServer.requestTimeout = 0;
httpServer.timeout = 0;

function shutdown(reason) {
    console.error(`cometd-server: stopping (${reason})`);
    server.close();
    httpServer.close();
    httpServer.closeAllConnections();
    process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (!args['no-stdin-exit']) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
}

httpServer.on('error', e => {
    console.error(`cometd-server: cannot listen on 127.0.0.1:${port}: ${e.message}`);
    process.exit(1);
});
httpServer.listen(port, '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${httpServer.address().port}\n`);
});
