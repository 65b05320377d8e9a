// A Saleor app built only on @saleor/app-sdk: its manifest handler, its register handler
// (createAppRegisterHandler) and a SaleorAsyncWebhook for ORDER_CREATED, on the SDK's
// fetch-API handlers, served by a plain Node http server on a free loopback port.
//
// The app's own code writes one JSON line to stdout per thing it is handed:
//   {"kind": "listening", "port": N}                     once the server listens
//   {"kind": "registered", "appId": ..., "saleorApiUrl": ...}   after the SDK stored the token
//   {"kind": "order_created", "event": ..., "payload": {...}}  for each verified webhook
// Usage: node saleor_app.mjs <apl-file>
import http from "node:http";

import { FileAPL } from "@saleor/app-sdk/APL/file";
import {
  SaleorAsyncWebhook,
  createAppRegisterHandler,
  createManifestHandler,
} from "@saleor/app-sdk/handlers/fetch-api";

const apl = new FileAPL({ fileName: process.argv[2] });
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

const orderCreated = new SaleorAsyncWebhook({
  name: "Order created",
  webhookPath: "api/webhooks/order-created",
  event: "ORDER_CREATED",
  apl,
  query: `subscription {
    event {
      ... on OrderCreated {
        order { id number email lines { sku quantity } }
      }
    }
  }`,
});

const routes = {
  "GET /api/manifest": createManifestHandler({
    manifestFactory: async ({ appBaseUrl }) => ({
      id: "webhookkit.test.orders",
      version: "1.0.0",
      name: "Orders (SDK test app)",
      permissions: ["MANAGE_ORDERS"],
      appUrl: appBaseUrl,
      tokenTargetUrl: `${appBaseUrl}/api/register`,
      webhooks: [orderCreated.getWebhookManifest(appBaseUrl)],
      extensions: [],
    }),
  }),
  "POST /api/register": createAppRegisterHandler({
    apl,
    onAuthAplSaved: async (_request, { authData }) => {
      say({ kind: "registered", appId: authData.appId, saleorApiUrl: authData.saleorApiUrl });
    },
  }),
  "POST /api/webhooks/order-created": orderCreated.createHandler(async (_request, context) => {
    say({ kind: "order_created", event: context.event, payload: context.payload });
    return new Response("accepted", { status: 200 });
  }),
};

// Node's request -> a fetch-API Request for the SDK's handler -> the handler's Response back.
const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const handler = routes[`${req.method} ${req.url.split("?")[0]}`];
  if (!handler) {
    res.writeHead(404).end("not found");
    return;
  }
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    headers.set(key, Array.isArray(value) ? value.join(", ") : value);
  }
  const request = new Request(`http://${req.headers.host}${req.url}`, {
    method: req.method,
    headers,
    body: ["GET", "HEAD"].includes(req.method) ? undefined : Buffer.concat(chunks),
  });
  try {
    const response = await handler(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    res.writeHead(500).end(String(error));
  }
});

server.listen(0, "127.0.0.1", () => say({ kind: "listening", port: server.address().port }));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
