// The greeting protocol (chunk framing) on Node.js `tls`, the TLS peer of
// node_server.js for bench/tls_compare.sh.
// usage: node node_tls_server.js PORT CERT KEY
'use strict';
const fs = require('fs');
const tls = require('tls');

const [port, cert, key] = process.argv.slice(2);
const server = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (sock) => {
  sock.setNoDelay(true);
  sock.write('Welcome!');
  sock.on('error', () => {});
  sock.on('data', (data) => {
    if (data.length === 4 && data.toString('latin1') === 'exit') sock.end();
    else sock.write(Buffer.concat([Buffer.from('Hello, '), data, Buffer.from('!')]));
  });
});
// A handshake the client resets is not a server error.
server.on('tlsClientError', () => {});
server.listen({ host: '127.0.0.1', port: Number(port), backlog: 511 });
