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

  // A `null` field reads as absent, as the CLI reads it. Object.fromEntries keeps a key named
  // "__proto__" as a field, where an assignment would drop it.
  const withoutNulls = (object) => Object.fromEntries(Object.entries(object).filter(([, value]) => value !== null));

  const FIELDS = {
    transcript: ["format", "version", "exported_at", "channel", "viewer", "messages", "bots", "head", "keys"],
    channel: ["id", "name", "slots", "closed", "faithful_from", "reveal_private"],
    readable: ["seq", "kind", "sender", "sender_name", "to", "nonce", "at", "text", "data", "hash"],
    withheld: ["seq", "withheld", "digest", "hash"],
    bot: ["slot", "name", "language", "source", "code_hash", "params", "params_hash", "seed_commitment", "seed", "attached_seq", "ended", "disabled"],
    head: ["channel", "seq", "head", "at", "key_id", "signature"],
    key: ["id", "algorithm", "public", "created_at", "retired_at"],
  };

  // Verifiers refuse fields they do not know (docs/transcript.md).
  function known(object, kind, where) {
    if (!object || typeof object !== "object" || Array.isArray(object)) throw new Divergence(`${where} is not an object`);
    const unknown = Object.keys(object).filter((key) => !FIELDS[kind].includes(key));
    if (unknown.length) throw new Divergence(`${where} has fields no version 1 transcript has: ${unknown.join(", ")}`);
    return withoutNulls(object);
  }

  const sameJson = (a, b) => canonical(a ?? null) === canonical(b ?? null);

  async function check(transcript, report) {
    transcript = known(transcript, "transcript", "the transcript");
    if (transcript.format !== "mcp-multiplayer-transcript" || transcript.version !== 1) {
      throw new Divergence(`not a transcript this page knows (format ${JSON.stringify(transcript.format)}, version ${JSON.stringify(transcript.version)})`);
    }
    const channel = known(transcript.channel, "channel", "the channel");
    const head = known(transcript.head, "head", "the head");
    const keys = (Array.isArray(transcript.keys) ? transcript.keys : []).map((key, i) => known(key, "key", `key ${i + 1}`));
    const raw = Array.isArray(transcript.messages) ? transcript.messages : [];
    const messages = raw.map((message, i) =>
      known(message, message && message.withheld === true ? "withheld" : "readable", `message ${i + 1}`));
    if (messages.length !== head.seq) throw new Divergence(`the head is at seq ${head.seq} but ${messages.length} messages are listed`);
    report(`Format version 1, channel ${channel.id}, ${messages.length} messages.`);

    // 2. The chain.
    let link = GENESIS;
    let withheld = 0;
    for (const [index, message] of messages.entries()) {
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

    // 3. The signature, by a key this server publishes: the export's own key list proves nothing.
    if (head.channel !== channel.id) throw new Divergence("the signed head is for another channel");
    let published;
    try {
      const response = await fetch("/.well-known/mcp-multiplayer-keys");
      if (!response.ok) throw new Error(`it answered ${response.status}`);
      published = await response.json();
    } catch (error) {
      throw new Divergence(`this server's public keys could not be read (${error.message}); try again, or use the CLI`);
    }
    const key = (published.keys || []).find((candidate) => candidate.id === head.key_id);
    if (!key) {
      throw new Divergence(`the head is signed by ${head.key_id}, which this server does not publish: verify it against the keys of the server it came from (mcp-multiplayer verify --keys)`);
    }
    if (key.algorithm !== "Ed25519") throw new Divergence(`key ${key.id} is not Ed25519`);
    const listed = keys.find((candidate) => candidate.id === key.id);
    if (listed && listed.public !== key.public) throw new Divergence(`the transcript lists key ${key.id} with another public key than this server publishes`);
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
    report(`The head (seq ${head.seq}) is signed by ${key.id}, a key this server publishes.`);

    // 4. The channel's own record.
    const notices = messages.filter((m) => m.withheld !== true && m.kind === "system");
    const event = (name) => notices.filter((m) => m.data && m.data.event === name);
    const created = messages[0];
    if (!created || created.withheld === true || created.kind !== "system" || !created.data || created.data.event !== "created") {
      throw new Divergence("seq 1 is not the channel's created notice");
    }
    if (!sameJson(created.data.slots, channel.slots)) throw new Divergence("the header's slots are not the ones the created notice announced");
    if (created.data.reveal_private !== undefined) {
      if (created.data.reveal_private !== channel.reveal_private) throw new Divergence("the header's reveal_private is not the created notice's");
      if ((channel.faithful_from || 0) !== 0) throw new Divergence("faithful_from must be 0 for a channel created with the transcript");
    }
    const names = notices.filter((m) => m.data && (m.data.event === "created" || m.data.event === "renamed"));
    if (names[names.length - 1].data.name !== channel.name) throw new Divergence("the header's name is not the last one the notices gave");
    if ((event("closed").length > 0) !== (channel.closed === true)) throw new Divergence("the header's closed flag disagrees with the notices");
    const labels = new Map((channel.slots || []).map((spec) => {
      const [kind, label] = String(spec).split(":");
      return [label, kind];
    }));
    for (const message of messages) {
      if (message.withheld === true) continue;
      const from = message.sender === undefined ? undefined : labels.get(message.sender);
      const allowed =
        (message.kind === "user" && from === "invite") ||
        (message.kind === "bot" && from === "bot") ||
        (message.kind === "system" && message.sender === undefined && message.sender_name === "system");
      if (!allowed) throw new Divergence(`seq ${message.seq}: a ${message.kind} message from ${message.sender ?? "no slot"}, which may not write it`);
      if (message.to !== undefined && !labels.has(message.to)) throw new Divergence(`seq ${message.seq}: addressed to ${message.to}, no slot of this channel`);
    }
    report(`The header agrees with the notices (“${channel.name}”, ${labels.size} slots${channel.closed ? ", closed" : ""}), and every readable message was written by a slot that may.`);
    if (event("fetch_attested").length) {
      report("Fetch records' signatures (the witness) are checked by the CLI only.", "warn");
    }

    // 5. Each bot against its notices.
    const bots = (Array.isArray(transcript.bots) ? transcript.bots : []).map((bot, i) => known(bot, "bot", `bot ${i + 1}`));
    const attachedSlots = new Set(event("bot_attached").map((m) => m.data.slot));
    const listedSlots = bots.map((bot) => bot.slot);
    if (listedSlots.length !== new Set(listedSlots).size || listedSlots.length !== attachedSlots.size || !listedSlots.every((slot) => attachedSlots.has(slot))) {
      throw new Divergence("the bots listed are not exactly one per slot that a bot was attached to");
    }
    for (const bot of bots) {
      const where = `bot ${bot.name} in ${bot.slot}`;
      const attaches = event("bot_attached").filter((m) => m.data.slot === bot.slot);
      const latest = attaches[attaches.length - 1];
      if (latest.seq !== bot.attached_seq) throw new Divergence(`${where}: the latest attach notice is at seq ${latest.seq}, not ${bot.attached_seq}`);
      for (const field of ["name", "language", "code_hash", "params_hash", "seed_commitment"]) {
        if (latest.data[field] !== bot[field]) throw new Divergence(`${where}: its ${field} is not what its attach notice announced`);
      }
      if ((await sha256Text(bot.source)) !== bot.code_hash) throw new Divergence(`${where}: the source does not hash to its code_hash`);
      if ((await sha256Text(canonical(bot.params ?? {}))) !== bot.params_hash) throw new Divergence(`${where}: the params do not hash to params_hash`);
      const after = (name) => event(name).filter((m) => m.data.slot === bot.slot && m.seq > bot.attached_seq);
      if ((after("bot_run_ended").length > 0) !== (bot.ended === true)) throw new Divergence(`${where}: ended disagrees with the notices`);
      if ((after("bot_disabled").length > 0) !== (bot.disabled === true)) throw new Divergence(`${where}: disabled disagrees with the notices`);
      const [reveal] = after("bot_seed_revealed");
      let seed = "seed not revealed yet";
      if (reveal || bot.seed !== undefined) {
        if (!reveal || bot.seed !== reveal.data.seed) throw new Divergence(`${where}: the seed is not the one its reveal notice published`);
        if (!/^[0-9a-f]{64}$/.test(bot.seed)) throw new Divergence(`${where}: the seed is not 64 lowercase hex digits`);
        if ((await seedCommitment(channel.id, bot.slot, bot.seed)) !== bot.seed_commitment) {
          throw new Divergence(`${where}: the revealed seed does not match its commitment`);
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
