// server-everything's own record of what it ran, for the attack corpus: `node --import <this file>`.
//
// The reference servers write one JSON line per message they execute (examples/servers/common.py,
// CallLog); server-everything has no such log, so this preload adds the same record inside its process:
// every JSON-RPC request or notification its transport hands the protocol layer, as the server itself
// parsed it (the method, the tool a tools/call names), with the forwarding headers that reached it.
// Nothing else changes.
//
// MCP_CALL_LOG: the file to append to. MCP_REPLICA_ID: the replica's name in each line.

import { appendFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const callLog = process.env.MCP_CALL_LOG;
const replica = process.env.MCP_REPLICA_ID ?? "everything";
if (!callLog) {
  throw new Error("recorder.mjs needs MCP_CALL_LOG");
}
// As CallLog: every value of these that arrived (the transport joins repeated ones with ", ").
const FORWARDING = ["x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-real-ip", "forwarded"];

// The SDK module server-everything itself imports (ESM build), found beside the script node runs.
const script = process.argv[1];
const marker = `${path.sep}node_modules${path.sep}`;
const modules = script.slice(0, script.lastIndexOf(marker) + marker.length);
const protocolUrl = pathToFileURL(
  path.join(modules, "@modelcontextprotocol", "sdk", "dist", "esm", "shared", "protocol.js"),
);
const { Protocol } = await import(protocolUrl.href);

function record(message, headers, session) {
  const lower = Object.fromEntries(
    Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
  const entry = {
    replica,
    method: message.method,
    tool:
      message.method === "tools/call" && typeof message.params?.name === "string"
        ? message.params.name
        : null,
    request_id: lower["x-request-id"] ?? null,
    forwarded_for: lower["x-forwarded-for"] ?? null,
    session: session ?? null,
    headers: Object.keys(lower).sort(),
    repeated: [],
    forwarding: Object.fromEntries(
      FORWARDING.filter((name) => name in lower).map((name) => [name, [lower[name]]]),
    ),
  };
  appendFileSync(callLog, `${JSON.stringify(entry)}\n`);
}

// Every message the transport hands the protocol layer, with the HTTP request it came in (Protocol's
// own notification path drops the request, so the transport's callback is wrapped instead).
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
