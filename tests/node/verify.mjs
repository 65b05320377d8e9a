// Verifies signatures made by webhookkit with the receivers' own code: Saleor's app SDK
// (verifySignatureWithJwks, which bundles jose 5) and jose 6's flattenedVerify against the
// JWKS that webhookkit serves. Ed25519 Standard Webhooks signatures (v1a) are checked with
// node's crypto. Reads {"cases": [...]} on stdin, writes {"results": [...]} on stdout.
import { createPublicKey, verify as edVerify } from "node:crypto";
import { readFileSync } from "node:fs";

import { verifySignatureWithJwks } from "@saleor/app-sdk/auth";
import * as jose from "jose";

const reason = (err) => (err && err.message ? err.message : String(err));

async function saleorSdk(c, body) {
  const response = await fetch(c.jwksUrl);
  const jwksText = await response.text();
  await verifySignatureWithJwks(jwksText, c.signature, body.toString("utf8"));
}

async function joseFlattened(c, body) {
  const [protectedHeader, , signature] = c.signature.split(".");
  const keys = jose.createRemoteJWKSet(new URL(c.jwksUrl));
  await jose.flattenedVerify(
    { protected: protectedHeader, payload: new Uint8Array(body), signature },
    keys,
  );
}

async function ed25519(c, body) {
  // whpk_ + base64(raw 32-byte key) -> SPKI DER for node's crypto.
  const raw = Buffer.from(c.publicKey.slice("whpk_".length), "base64");
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]);
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  const content = Buffer.concat([Buffer.from(`${c.msgId}.${c.timestamp}.`), body]);
  const signatures = c.signatureHeader
    .split(" ")
    .filter((s) => s.startsWith("v1a,"))
    .map((s) => Buffer.from(s.slice(4), "base64"));
  if (!signatures.some((sig) => edVerify(null, content, key, sig))) {
    throw new Error("no v1a signature matches");
  }
}

const checks = { saleorSdk, joseFlattened, ed25519 };

async function run(c) {
  const body = Buffer.from(c.bodyB64, "base64");
  const outcome = {};
  for (const name of c.checks) {
    try {
      await checks[name](c, body);
      outcome[name] = { ok: true };
    } catch (err) {
      outcome[name] = { ok: false, error: reason(err) };
    }
  }
  return { name: c.name, ...outcome };
}

const input = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const c of input.cases) {
  results.push(await run(c));
}
process.stdout.write(JSON.stringify({ results }));
