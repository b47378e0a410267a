// The baseline: a bare aedes broker (no auth, no ingest, no database) in its own process, like the server.
// Prints its port on stdout, runs until killed.
import { Aedes } from 'aedes';
import { createServer } from 'node:net';

const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
