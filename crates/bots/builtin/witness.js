// WitnessBot: any participant asks it to fetch an HTTPS URL; the server fetches it, records what
// it saw in the channel as a signed `fetch_attested` notice, and the bot posts a summary, so that
// everyone in the channel sees the same response and can cite it.
//
// Asking: post (publicly, or privately to the bot) "fetch https://example.com/page", or data
// {"fetch": "https://example.com/page"}. Other messages are chat and are ignored.
//
// What happens:
// 1. The bot checks the URL's shape (https://, at most 2048 bytes, no spaces) and asks the server
//    to fetch it (ctx.request_fetch), tagging the request with the asking message's seq. It posts
//    {type: "requested", url, by, tag} at once.
// 2. The server fetches the URL outside the bot's sandbox: HTTPS only, public addresses only
//    (never loopback, private, link-local or cloud metadata addresses, checked where it
//    connects), within its caps on size, time and rate, and the operator's allow and deny lists.
//    Redirects are not followed: a 3xx is recorded with its location, which anyone may ask for.
// 3. The server appends a `fetch_attested` notice: the URL, the time, the address it connected
//    to, the TLS version and cipher, the certificate chain (DER, with SHA-256 fingerprints), the
//    status, a few headers, the body's SHA-256 and its first 8 KiB, signed with the server's key
//    (docs/events.md). That notice is this bot's on_fetch event.
// 4. The bot posts {type: "attested", seq (the notice's seq: cite it), tag, url, by, ok, status,
//    error, content_type, body_sha256, bytes, truncated, tls: {version, cipher, leaf_sha256},
//    address, excerpt (the body's first 1000 characters, when it is text)}.
//
// Violations go privately to whoever made them and change nothing: BAD_URL (not an https URL
// this bot passes on), BUSY (8 fetches are already pending for this channel's witness).
//
// What this proves, honestly: that this server, under its signing key, saw this response from
// that address over TLS with that certificate chain, at that time. It is not a TLS notarization
// (TLSNotary, DECO): the TLS session is not proved to anyone else, so a server that lies could
// sign a made-up record. Trust grows with several independent witnesses fetching the same URL
// (several servers, or several operators), or with sources that sign their own content.

const MAX_URL_BYTES = 2048;
const MAX_PENDING = 8;
const EXCERPT_CHARS = 1000;

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params;
  }

  on_init() {
    this.ctx.post({
      text:
        'WitnessBot: ask me to fetch an HTTPS URL ("fetch https://example.com/page") and the ' +
        "server fetches it, records what it saw (TLS certificate chain, status, body hash and " +
        "excerpt) as a signed notice in this channel, and I post a summary everyone can cite.",
      data: { type: "rules", max_url_bytes: MAX_URL_BYTES, max_pending: MAX_PENDING },
    });
    this.ctx.set_state({ pending: {} });
  }

  on_message(msg) {
    const url = requestedUrl(msg.body);
    if (url === null) {
      return;
    }
    const problem = urlProblem(url);
    if (problem !== null) {
      return this.violation(msg.sender, "BAD_URL", problem);
    }
    const state = this.state();
    if (Object.keys(state.pending).length >= MAX_PENDING) {
      return this.violation(
        msg.sender,
        "BUSY",
        `${MAX_PENDING} fetches are already pending; ask again when one is answered.`,
      );
    }
    const tag = `req-${msg.seq}`;
    this.ctx.request_fetch(url, { tag });
    state.pending[tag] = { url, by: msg.sender };
    this.ctx.post({
      text: `Fetching ${url} for ${msg.sender_name}.`,
      data: { type: "requested", url, by: msg.sender, tag },
    });
    this.ctx.set_state(state);
  }

  on_fetch(result) {
    const state = this.state();
    const asked = state.pending[result.tag];
    delete state.pending[result.tag];
    this.ctx.set_state(state);
    const body = result.body;
    const tls = result.tls;
    const excerpt = body && body.text !== null ? body.text.slice(0, EXCERPT_CHARS) : null;
    const summary = result.ok
      ? `${result.status}, ${body ? body.bytes : 0} bytes, sha256 ${body ? body.sha256 : "-"}`
      : `failed: ${result.error.code} (${result.error.message})`;
    this.ctx.post({
      text:
        `Witnessed ${result.url}: ${summary}` +
        (tls ? `, ${tls.version}, certificate sha256 ${tls.chain.length ? tls.chain[0].sha256 : "-"}` : "") +
        `. The signed record is message #${result.seq}.`,
      data: {
        type: "attested",
        seq: result.seq,
        tag: result.tag,
        url: result.url,
        by: asked ? asked.by : null,
        ok: result.ok,
        status: result.status,
        error: result.error,
        content_type: result.headers["content-type"] === undefined ? null : result.headers["content-type"],
        body_sha256: body ? body.sha256 : null,
        bytes: body ? body.bytes : null,
        truncated: body ? body.truncated : null,
        tls: tls
          ? { version: tls.version, cipher: tls.cipher, leaf_sha256: tls.chain.length ? tls.chain[0].sha256 : null }
          : null,
        address: result.address,
        excerpt,
      },
    });
  }

  state() {
    const state = this.ctx.get_state();
    return state && typeof state.pending === "object" && state.pending !== null ? state : { pending: {} };
  }

  violation(slot, code, message) {
    this.ctx.post_to(slot, {
      text: `${code}: ${message}`,
      data: { type: "violation", code, message },
    });
  }
}

// The URL a message asks for, or null when the message is not a request.
function requestedUrl(body) {
  if (body.data !== null && typeof body.data === "object" && "fetch" in body.data) {
    return typeof body.data.fetch === "string" ? body.data.fetch : "";
  }
  const text = (body.text || "").trim();
  const match = /^fetch\s+(\S*)/i.exec(text);
  return match ? match[1] : null;
}

// Why the bot will not pass `url` on, or null.
function urlProblem(url) {
  if (!url.startsWith("https://")) {
    return 'Only https:// URLs are fetched, e.g. "fetch https://example.com/page".';
  }
  if (utf8Length(url) > MAX_URL_BYTES) {
    return `The URL is longer than ${MAX_URL_BYTES} bytes.`;
  }
  if (/[\s\u0000-\u001f\u007f]/.test(url)) {
    return "The URL has spaces or control characters.";
  }
  return null;
}

function utf8Length(text) {
  let bytes = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}
