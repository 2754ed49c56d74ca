// Pins a server that listens on a bare port (server-everything: `app.listen(PORT)`, every address) to one
// address, MCP_LISTEN_HOST, as a pod has one: `node --import <this file> <server>`. Nothing else changes.
// Without it, a second run on the machine (another test session, `mcpfleet dev`) could not use the port.

import net from "node:net";

const host = process.env.MCP_LISTEN_HOST;
if (!host) {
  throw new Error("listen_host.mjs needs MCP_LISTEN_HOST");
}

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const [first] = args;
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    const callback = args.find((arg) => typeof arg === "function");
    return listen.call(this, { port: Number(first), host }, callback);
  }
  return listen.apply(this, args);
};
