import type { NatsConnection } from 'nats';

/** The part of a nats-server 2.9 CONNZ connection (server/monitor.go ConnInfo, `auth: true`) read here. */
export interface ConnzConnection {
  type?: string;
  start?: string;
  name_tag?: string;
  mqtt_client?: string;
}

/** The part of a ROUTEZ reply (server/monitor.go Routez) read here: who this node is routed to. */
interface RoutezReply {
  data?: { routes?: Array<{ remote_id?: string }> };
}

/** Every open connection the nodes listed; `complete` is false when a node routed to the cluster did not answer. */
export interface AccountConnections {
  connections: ConnzConnection[];
  complete: boolean;
}

interface ConnzReply {
  server?: { id?: string; name?: string };
  data?: { total?: number; offset?: number; connections?: ConnzConnection[] };
  error?: { description?: string };
}

/**
 * Connections per page. With `auth: true` nats-server puts the user JWT in each entry (about 1.3 kB for
 * a device JWT, measured on 2.9.10): 400 keep a reply well under the default max_payload of 1 MB.
 */
const PAGE = 400;
/** How long the first, cluster-wide request collects replies: one per live node. */
const GATHER_MS = 1500;
const PAGE_TIMEOUT_MS = 5000;
/** A listing during which a node's connection count moved is taken again (offset paging can skip). */
const ATTEMPTS = 3;

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (data: Uint8Array) => JSON.parse(new TextDecoder().decode(data)) as ConnzReply;

/**
 * Every open connection of one account across the cluster, from nats-server's CONNZ monitoring endpoint
 * over the system account (docs.nats.io "System Events": `$SYS.REQ.ACCOUNT.<id>.CONNZ`, answered by each
 * node with its own connections; `$SYS.REQ.SERVER.<id>.CONNZ` with `acc` pages one node). The nodes that
 * should have answered are the first one's routes (ROUTEZ): a node that did not answer within GATHER_MS
 * makes the listing incomplete, as its connections are not in it.
 */
export async function accountConnections(sys: NatsConnection, account: string): Promise<AccountConnections> {
  for (let attempt = 1; ; attempt++) {
    const listing = await listOnce(sys, account);
    if (listing.stable || attempt === ATTEMPTS) return { connections: listing.connections, complete: listing.complete };
  }
}

async function listOnce(
  sys: NatsConnection,
  account: string,
): Promise<{ connections: ConnzConnection[]; stable: boolean; complete: boolean }> {
  const request = { acc: account, auth: true, offset: 0, limit: PAGE };
  const first: ConnzReply[] = [];
  for await (const message of await sys.requestMany(`$SYS.REQ.ACCOUNT.${account}.CONNZ`, encode(request), {
    maxWait: GATHER_MS,
  }))
    first.push(decode(message.data));
  const connections: ConnzConnection[] = [];
  let stable = true;
  for (const reply of first) {
    if (reply.error) throw new Error(`CONNZ of ${reply.server?.name ?? '?'}: ${reply.error.description ?? 'error'}`);
    connections.push(...(reply.data?.connections ?? []));
    const total = reply.data?.total ?? 0;
    for (let offset = PAGE; offset < total; offset += PAGE) {
      const page = decode(
        (
          await sys.request(`$SYS.REQ.SERVER.${reply.server?.id}.CONNZ`, encode({ ...request, offset }), {
            timeout: PAGE_TIMEOUT_MS,
          })
        ).data,
      );
      if (page.error) throw new Error(`CONNZ of ${reply.server?.name ?? '?'}: ${page.error.description ?? 'error'}`);
      connections.push(...(page.data?.connections ?? []));
      if ((page.data?.total ?? 0) !== total) stable = false;
    }
  }
  return { connections, stable, complete: await allAnswered(sys, first) };
}

/** Whether every node the first one is routed to (and it) answered; none answering is incomplete too. */
async function allAnswered(sys: NatsConnection, replies: ConnzReply[]): Promise<boolean> {
  const answered = new Set(replies.map((reply) => reply.server?.id));
  const [first] = replies;
  if (!first?.server?.id) return false;
  const routez = JSON.parse(
    new TextDecoder().decode(
      (await sys.request(`$SYS.REQ.SERVER.${first.server.id}.ROUTEZ`, encode({}), { timeout: PAGE_TIMEOUT_MS })).data,
    ),
  ) as RoutezReply;
  return (routez.data?.routes ?? []).every((route) => answered.has(route.remote_id));
}
