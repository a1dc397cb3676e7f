// The replay page: loads the visitor's transcript export, then steps through its messages and
// draws the board or table from the latest referee post that has one (tic-tac-toe's `board`,
// chess's `fen`, Blackjack's `table` and `result`), or else shows the referee's last words.
// Everything from the transcript is put on the page as text.
"use strict";

(() => {
  const root = document.getElementById("replay");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const slider = $("replay-step");
  const position = $("replay-position");
  const board = $("replay-board");
  const current = $("replay-message");
  let messages = [];

  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const PIECES = { K: "♔", Q: "♕", R: "♖", B: "♗", N: "♘", P: "♙", k: "♚", q: "♛", r: "♜", b: "♝", n: "♞", p: "♟" };

  function ticTacToe(cells) {
    const grid = element("div", "ttt");
    grid.setAttribute("role", "img");
    grid.setAttribute("aria-label", `Tic-tac-toe board: ${cells.map((c) => c || "empty").join(", ")}`);
    for (const cell of cells) grid.append(element("div", "", cell || ""));
    return grid;
  }

  function chess(fen) {
    const grid = element("div", "chess");
    grid.setAttribute("role", "img");
    grid.setAttribute("aria-label", `Chess position ${fen}`);
    const ranks = String(fen).split(" ")[0].split("/");
    ranks.forEach((rank, row) => {
      let column = 0;
      for (const symbol of rank) {
        const empty = Number(symbol);
        const count = Number.isInteger(empty) && empty > 0 ? empty : 1;
        for (let i = 0; i < count; i += 1) {
          const square = element("div", (row + column) % 2 === 0 ? "light" : "dark", empty ? "" : PIECES[symbol] || "?");
          grid.append(square);
          column += 1;
        }
      }
    });
    return grid;
  }

  function blackjack(data) {
    const felt = element("div", "table-felt");
    felt.append(element("h3", "", `Hand ${data.hand ?? ""}`));
    const dealer = data.dealer || {};
    const dealerCards = Array.isArray(dealer.cards) ? dealer.cards.join(" ") : `${dealer.up ?? "?"} ▮`;
    felt.append(element("div", "cards", `Dealer: ${dealerCards}${dealer.total !== undefined ? ` = ${dealer.total}` : ""}`));
    for (const hand of Array.isArray(data.hands) ? data.hands : []) {
      const cards = Array.isArray(hand.cards) ? hand.cards.join(" ") : "";
      felt.append(element("div", "cards", `${hand.slot}: ${cards} = ${hand.total} (bet ${hand.bet}, ${hand.status})`));
    }
    for (const result of Array.isArray(data.results) ? data.results : []) {
      felt.append(element("div", "", JSON.stringify(result)));
    }
    return felt;
  }

  // The drawing for one referee post, or null when it has nothing to draw.
  function drawing(message) {
    const data = message.data;
    if (!data || typeof data !== "object") return null;
    if (Array.isArray(data.board) && data.board.length === 9) return ticTacToe(data.board);
    if (typeof data.fen === "string") return chess(data.fen);
    if (data.type === "table" || (data.type === "result" && data.dealer)) return blackjack(data);
    return null;
  }

  function describe(message) {
    const box = document.createDocumentFragment();
    if (message.withheld) {
      box.append(element("p", "msg withheld", `#${message.seq}: a private message you may not read (digest ${message.digest}).`));
      return box;
    }
    const meta = `#${message.seq} · ${message.kind} · ${message.sender_name}${message.sender ? ` (${message.sender})` : ""}${message.to ? ` · private → ${message.to}` : ""}`;
    box.append(element("p", "note", meta));
    if (message.text !== undefined) box.append(element("pre", "", message.text));
    if (message.data !== undefined) box.append(element("pre", "", JSON.stringify(message.data, null, 2)));
    return box;
  }

  function show(step) {
    const index = Math.max(0, Math.min(messages.length - 1, step));
    slider.value = String(index);
    const message = messages[index];
    position.textContent = `Step ${index + 1} of ${messages.length} (seq ${message.seq})`;
    current.replaceChildren(describe(message));
    for (let i = index; i >= 0; i -= 1) {
      const candidate = messages[i];
      if (candidate.withheld || candidate.kind !== "bot") continue;
      const drawn = drawing(candidate);
      if (drawn) {
        board.replaceChildren(drawn, element("p", "note", `As of seq ${candidate.seq}.`));
        return;
      }
    }
    const lastWords = messages.slice(0, index + 1).reverse().find((m) => !m.withheld && m.kind === "bot" && m.text);
    board.replaceChildren(lastWords ? element("pre", "", lastWords.text) : element("p", "note", "No board yet."));
  }

  async function load() {
    let transcript;
    try {
      const response = await fetch(root.dataset.src, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      transcript = await response.json();
    } catch (error) {
      position.textContent = `Could not load the transcript: ${error.message}. Reload to try again.`;
      return;
    }
    messages = Array.isArray(transcript.messages) ? transcript.messages : [];
    if (!messages.length) {
      position.textContent = "This channel has no messages yet.";
      return;
    }
    slider.max = String(messages.length - 1);
    slider.addEventListener("input", () => show(Number(slider.value)));
    $("replay-first").addEventListener("click", () => show(0));
    $("replay-prev").addEventListener("click", () => show(Number(slider.value) - 1));
    $("replay-next").addEventListener("click", () => show(Number(slider.value) + 1));
    $("replay-last").addEventListener("click", () => show(messages.length - 1));
    document.addEventListener("keydown", (event) => {
      if (event.target.closest("input, textarea")) return;
      if (event.key === "ArrowLeft") show(Number(slider.value) - 1);
      if (event.key === "ArrowRight") show(Number(slider.value) + 1);
    });
    show(messages.length - 1);
  }

  load();
})();
