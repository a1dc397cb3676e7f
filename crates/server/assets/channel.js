// The live channel page: long-polls /channels/{id}/feed (a 25 s sync from the visitor's seat)
// and appends each new message, built with textContent like the server-rendered ones, and
// keeps the signed head current. Stops on a refusal that waiting cannot cure.
"use strict";

(() => {
  const list = document.getElementById("messages");
  if (!list) return;
  const status = document.getElementById("feed-status");
  const channel = list.dataset.channel;
  const slot = list.dataset.slot;
  let cursor = Number(list.dataset.cursor);

  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  function item(message) {
    const li = element("li", `msg kind-${message.kind}${message.to ? " private" : ""}`);
    li.dataset.seq = String(message.seq);
    const meta = element("div", "meta");
    meta.append(element("span", "seq", `#${message.seq}`));
    const from = message.from_slot ? `${message.from_name} (${message.from_slot})` : message.from_name;
    meta.append(element("span", "from", from));
    meta.append(element("span", `kind ${message.kind}`, message.kind));
    if (message.to) meta.append(element("span", "private-to", `private → ${message.to}`));
    const time = element("time", "", message.at);
    time.dateTime = message.at;
    meta.append(time);
    li.append(meta);
    if (message.text !== undefined) li.append(element("pre", "text", message.text));
    if (message.data !== undefined) {
      const details = element("details", "data");
      details.append(element("summary", "", "data"));
      details.append(element("pre", "", JSON.stringify(message.data, null, 2)));
      li.append(details);
    }
    return li;
  }

  function showHead(head) {
    const fields = { "head-seq": head.seq, "head-hash": head.head, "head-key": head.key_id, "head-signature": head.signature };
    for (const [id, value] of Object.entries(fields)) {
      const node = document.getElementById(id);
      if (node) node.textContent = String(value);
    }
  }

  const say = (text) => { if (status) status.textContent = text; };
  const pause = (ms) => new Promise((done) => setTimeout(done, ms));

  async function follow() {
    let failures = 0;
    for (;;) {
      const url = `/channels/${encodeURIComponent(channel)}/feed?cursor=${cursor}&slot=${encodeURIComponent(slot)}`;
      let response;
      try {
        response = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
      } catch {
        failures += 1;
        say(`Connection lost; trying again (attempt ${failures})…`);
        await pause(Math.min(30_000, 1000 * 2 ** Math.min(failures, 5)));
        continue;
      }
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        const error = body && body.error;
        const text = error ? `${error.message}. ${error.hint}` : `The server answered ${response.status}.`;
        if ([401, 403, 404].includes(response.status)) {
          say(`Stopped following: ${text}`);
          return;
        }
        failures += 1;
        const retry = Number(response.headers.get("retry-after")) || Math.min(30, 2 ** Math.min(failures, 5));
        say(`${text} Trying again in ${retry} s…`);
        await pause(retry * 1000);
        continue;
      }
      failures = 0;
      const page = await response.json();
      for (const message of page.messages) {
        if (!list.querySelector(`li[data-seq="${message.seq}"]`)) list.append(item(message));
      }
      if (page.messages.length) list.lastElementChild.scrollIntoView({ block: "nearest" });
      cursor = page.next_cursor;
      showHead(page.head);
      if (page.channel && page.channel.closed) {
        say("This channel is closed.");
        return;
      }
      say(page.channel && page.messages.length ? "Live. The seats changed: reload to see them." : "Live: new messages appear here.");
    }
  }

  if (list.dataset.closed !== "true") follow();
})();
