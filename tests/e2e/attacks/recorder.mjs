// server-everything's own record of what it executed, for the attack corpus (`node --import` this file).
//
// The reference servers write one JSON line per message they execute (examples/servers/common.py,
// CallLog); server-everything has no such log, so this preload adds the same record inside its process:
// every JSON-RPC request or notification its transport hands the protocol layer, as the server itself parsed it (the
// method, the tool a tools/call names, and the X-Request-ID that reached it). Nothing else changes.
//
// MCP_CALL_LOG: the file to append to. MCP_REPLICA_ID: the replica's name in each line.
// MCP_LISTEN_HOST: the one address to listen on (server-everything otherwise binds every address).

import { appendFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";

const callLog = process.env.MCP_CALL_LOG;
const replica = process.env.MCP_REPLICA_ID ?? "everything";
const listenHost = process.env.MCP_LISTEN_HOST;

if (!callLog) {
  throw new Error("recorder.mjs needs MCP_CALL_LOG");
}

if (listenHost) {
  // app.listen(PORT) binds every interface; pin it to the replica's own address, as a pod has one.
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
      const callback = args.find((arg) => typeof arg === "function");
      return listen.call(this, { port: Number(args[0]), host: listenHost }, callback);
    }
    return listen.apply(this, args);
  };
}

// The SDK module server-everything itself imports (ESM build), found beside the script node runs.
const script = process.argv[1];
const modules = script.slice(0, script.lastIndexOf(`${path.sep}node_modules${path.sep}`) + 14);
const protocolUrl = pathToFileURL(
  path.join(modules, "@modelcontextprotocol", "sdk", "dist", "esm", "shared", "protocol.js"),
);
const { Protocol } = await import(protocolUrl.href);

function record(message, headers, session) {
  const entry = {
    replica,
    method: message.method,
    tool:
      message.method === "tools/call" && typeof message.params?.name === "string"
        ? message.params.name
        : null,
    request_id: headers?.["x-request-id"] ?? null,
    forwarded_for: headers?.["x-forwarded-for"] ?? null,
    session: session ?? null,
    headers: Object.keys(headers ?? {}).map((name) => name.toLowerCase()).sort(),
  };
  appendFileSync(callLog, `${JSON.stringify(entry)}\n`);
}

// Every message the transport hands the protocol layer, with the HTTP request it came in (notifications
// too: Protocol's own notification path drops the request's headers).
const connect = Protocol.prototype.connect;
Protocol.prototype.connect = async function (transport) {
  await connect.call(this, transport);
  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => {
    if (typeof message?.method === "string") {
      record(message, extra?.requestInfo?.headers, transport.sessionId);
    }
    return deliver?.(message, extra);
  };
};
