// The verify page: checks an exported transcript in the browser, as docs/transcript.md
// describes, and names the first divergence. WebCrypto does the hashing (SHA-256) and the
// signature (Ed25519); the canonical JSON (RFC 8785) is below. Bot replay is not done here.
"use strict";

(() => {
  const input = document.getElementById("transcript-file");
  if (!input) return;
  const drop = document.getElementById("drop");
  const verdict = document.getElementById("verdict");
  const title = document.getElementById("verdict-title");
  const list = document.getElementById("checks");

  const GENESIS = `sha256:${"0".repeat(64)}`;
  const HEAD_PREFIX = "mcp-multiplayer signed head v1\n";
  const COMMIT_DOMAIN = "mcp-multiplayer/commit/v1";
  const encoder = new TextEncoder();

  class Divergence extends Error {}

  // RFC 8785: ECMAScript's number and string forms, object keys sorted by UTF-16 code units.
  function canonical(value) {
    if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new Divergence("a number that JSON cannot hold");
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
    const keys = Object.keys(value).filter((key) => value[key] !== undefined).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
  }

  const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (bytes) => `sha256:${hex(await crypto.subtle.digest("SHA-256", bytes))}`;
  const sha256Text = (text) => sha256(encoder.encode(text));

  function base64url(text) {
    const base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function lengthPrefixed(parts) {
    const total = parts.reduce((sum, part) => sum + 8 + part.length, 0);
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    let at = 0;
    for (const part of parts) {
      view.setBigUint64(at, BigInt(part.length));
      out.set(part, at + 8);
      at += 8 + part.length;
    }
    return out;
  }

  // The seed commitment of docs/bot-api.md: channel, bot slot, the seed's hex, an empty salt.
  const seedCommitment = (channel, slot, seed) =>
    sha256(lengthPrefixed([COMMIT_DOMAIN, channel, slot, seed].map((s) => encoder.encode(s)).concat([new Uint8Array(0)])));

  // A `null` field reads as absent, as the CLI reads it.
  function withoutNulls(object) {
    const out = {};
    for (const [key, value] of Object.entries(object)) if (value !== null) out[key] = value;
    return out;
  }

  async function check(transcript, report) {
    if (transcript.format !== "mcp-multiplayer-transcript" || transcript.version !== 1) {
      throw new Divergence(`not a transcript this page knows (format ${JSON.stringify(transcript.format)}, version ${JSON.stringify(transcript.version)})`);
    }
    const channel = transcript.channel || {};
    const head = transcript.head || {};
    const messages = Array.isArray(transcript.messages) ? transcript.messages : [];
    if (messages.length !== head.seq) throw new Divergence(`the head is at seq ${head.seq} but ${messages.length} messages are listed`);
    report(`Format version 1, channel ${channel.id} (“${channel.name}”), ${messages.length} messages.`);

    let link = GENESIS;
    let withheld = 0;
    for (const [index, raw] of messages.entries()) {
      const message = withoutNulls(raw);
      if (message.seq !== index + 1) throw new Divergence(`message ${index + 1} has seq ${message.seq}: a gap or a reordering`);
      let digest;
      let scope;
      if (message.withheld === true) {
        digest = message.digest;
        scope = "private";
        withheld += 1;
      } else {
        const { hash, ...fields } = message;
        digest = await sha256Text(canonical({ ...fields, channel: channel.id }));
        scope = message.to !== undefined ? "private" : "public";
        if (scope === "private" && message.nonce === undefined && message.seq > (channel.faithful_from || 0)) {
          throw new Divergence(`seq ${message.seq}: a private message without its nonce`);
        }
      }
      link = await sha256Text(`${link}\n${digest}\n${scope}`);
      if (link !== message.hash) {
        throw new Divergence(`seq ${message.seq}: the chain breaks here: this message, or its digest, is not what was chained`);
      }
    }
    if (link !== head.head) throw new Divergence("the last link is not the signed head");
    report(`Every link of the chain recomputes (${withheld} withheld message${withheld === 1 ? "" : "s"} checked by digest), ending at the head.`);

    if (head.channel !== channel.id) throw new Divergence("the signed head is for another channel");
    const key = (transcript.keys || []).find((candidate) => candidate.id === head.key_id);
    if (!key) throw new Divergence(`the head is signed by ${head.key_id}, which the transcript does not list`);
    if (key.algorithm !== "Ed25519") throw new Divergence(`key ${key.id} is not Ed25519`);
    const publicKey = base64url(key.public);
    const keyHash = (await sha256(publicKey)).slice("sha256:".length, "sha256:".length + 16);
    if (key.id !== `ed25519:${keyHash}`) throw new Divergence(`key id ${key.id} does not name its own public key`);
    const signed = encoder.encode(HEAD_PREFIX + canonical({ channel: head.channel, seq: head.seq, head: head.head, at: head.at }));
    let valid;
    try {
      const imported = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      valid = await crypto.subtle.verify({ name: "Ed25519" }, imported, base64url(head.signature), signed);
    } catch (error) {
      throw new Divergence(`the signature could not be checked here (${error.message}); use the CLI`);
    }
    if (!valid) throw new Divergence("the head's signature does not verify");
    report(`The head (seq ${head.seq}) is signed by ${key.id}.`);

    try {
      const response = await fetch("/.well-known/mcp-multiplayer-keys");
      const published = await response.json();
      const same = (published.keys || []).some((k) => k.id === key.id && k.public === key.public);
      report(same
        ? "That key is one this server publishes."
        : "That key is not one this server publishes: compare it with the keys of the server the transcript came from.", same ? "pass" : "warn");
    } catch {
      report("This server's key list could not be read to compare the key.", "warn");
    }

    for (const bot of transcript.bots || []) {
      if ((await sha256Text(bot.source)) !== bot.code_hash) throw new Divergence(`bot ${bot.name} in ${bot.slot}: the source does not hash to its code_hash`);
      if ((await sha256Text(canonical(bot.params ?? {}))) !== bot.params_hash) throw new Divergence(`bot ${bot.name} in ${bot.slot}: the params do not hash to params_hash`);
      const attached = messages.find((m) => m.seq === bot.attached_seq);
      const notice = attached && !attached.withheld && attached.data;
      if (!notice || notice.event !== "bot_attached" || notice.slot !== bot.slot || notice.code_hash !== bot.code_hash || notice.params_hash !== bot.params_hash || notice.seed_commitment !== bot.seed_commitment) {
        throw new Divergence(`bot ${bot.name} in ${bot.slot}: its attach notice at seq ${bot.attached_seq} announced something else`);
      }
      let seed = "seed not revealed yet";
      if (bot.seed !== null && bot.seed !== undefined) {
        if ((await seedCommitment(channel.id, bot.slot, bot.seed)) !== bot.seed_commitment) {
          throw new Divergence(`bot ${bot.name} in ${bot.slot}: the revealed seed does not match its commitment`);
        }
        seed = "revealed seed matches its commitment";
      }
      report(`Bot ${bot.name} in ${bot.slot}: code, params and attach notice agree; ${seed}.`);
    }
    report("Bot events were not replayed: that needs the bots' runtimes. Run `mcp-multiplayer verify` on the file for the full check.", "warn");
  }

  async function verify(file) {
    verdict.hidden = false;
    verdict.className = "card";
    title.textContent = `Checking ${file.name}…`;
    list.replaceChildren();
    const report = (text, outcome = "pass") => {
      const item = document.createElement("li");
      item.className = outcome;
      item.textContent = text;
      list.append(item);
    };
    try {
      if (!window.crypto || !crypto.subtle) throw new Divergence("this page is not in a secure context (HTTPS), so the browser offers no WebCrypto; use the CLI");
      const transcript = JSON.parse(await file.text());
      await check(transcript, report);
      verdict.className = "card good";
      title.textContent = "Verified: chain, signature and hashes";
    } catch (error) {
      report(error instanceof SyntaxError ? `Not JSON: ${error.message}` : error.message, "fail");
      verdict.className = "card bad";
      title.textContent = error instanceof Divergence ? "Not verified: the first divergence" : "Not verified";
    }
  }

  input.addEventListener("change", () => input.files[0] && verify(input.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) verify(file);
  });
})();
