// The CometD half both GWS-login scripts share (gws-cometd-cli/tests/it/js/gws-login-tail.js
// for v2, gws-cometd-sim/tests/it/js/gws-v3-login-tail.js for v3): the official CometD
// JavaScript client (npm `cometd` + `cometd-nodejs-client`, pinned in package.json) on `url`
// with the login's `headers`, long polling only, `channels` subscribed in one batch. Prints
// one JSON line {"channel":...,"data":...} per message on stdout and exits 0 after `count`
// messages (after a /meta/disconnect); calls `fail` after `duration` seconds. Writes READY on
// stderr once every subscription is confirmed.
'use strict';

async function tail({ url, headers, channels, count, duration, fail }) {
    const { adapt } = await import('cometd-nodejs-client');
    const { CometD } = await import('cometd');
    adapt();

    const cometd = new CometD();
    // GWS serves long polling only.
    cometd.unregisterTransport('websocket');
    cometd.configure({ url, requestHeaders: headers, logLevel: 'warn' });

    let received = 0;
    const timer = setTimeout(() => {
        fail(`${received} of ${count} messages arrived within ${duration} s`);
    }, duration * 1000);

    function onMessage(message) {
        process.stdout.write(JSON.stringify({ channel: message.channel, data: message.data }) + '\n');
        received += 1;
        if (received === count) {
            clearTimeout(timer);
            const exit = () => process.stdout.write('', () => process.exit(0));
            const done = setTimeout(exit, 2000);
            cometd.disconnect(() => {
                clearTimeout(done);
                exit();
            });
        }
    }

    cometd.handshake(reply => {
        if (!reply.successful) fail(`handshake failed: ${JSON.stringify(reply)}`);
        let subscribed = 0;
        cometd.batch(() => {
            for (const channel of channels) {
                cometd.subscribe(channel, onMessage, sub => {
                    if (!sub.successful) fail(`subscribe to ${channel} failed: ${JSON.stringify(sub)}`);
                    subscribed += 1;
                    if (subscribed === channels.length) process.stderr.write('READY\n');
                });
            }
        });
    });
}

module.exports = { tail };
