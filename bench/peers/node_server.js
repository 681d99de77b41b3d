// The greeting protocol on Node.js `net`.
// usage: node node_server.js PORT [chunk|line]
'use strict';
const net = require('net');
const line = process.argv[3] === 'line';

const server = net.createServer({ noDelay: true }, (sock) => {
  let buf = '';
  sock.write(line ? 'Welcome!\n' : 'Welcome!');
  sock.on('error', () => {});
  sock.on('data', (data) => {
    if (!line) {
      if (data.length === 4 && data.toString('latin1') === 'exit') sock.end();
      else sock.write(Buffer.concat([Buffer.from('Hello, '), data, Buffer.from('!')]));
      return;
    }
    buf += data.toString('latin1');
    const parts = buf.split('\n');
    buf = parts.pop();
    let out = '';
    for (let m of parts) {
      if (m.endsWith('\r')) m = m.slice(0, -1);
      if (m === 'exit') { sock.end(out); return; }
      out += 'Hello, ' + m + '!\n';
    }
    if (out) sock.write(out, 'latin1');
  });
});
server.listen({ host: '127.0.0.1', port: Number(process.argv[2]), backlog: 511 });
