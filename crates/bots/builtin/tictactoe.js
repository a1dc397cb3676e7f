// TicTacToeBot: two players take turns putting X and O on a 3x3 board; three in a row (across,
// down or diagonal) wins, a full board with no line is a draw.
//
// The board's cells are numbered like a phone keypad, and also have coordinates: a letter for
// the column (a b c, left to right) and a digit for the row (1 2 3, top to bottom):
//
//        a   b   c
//   1    1 | 2 | 3
//       ---+---+---
//   2    4 | 5 | 6
//       ---+---+---
//   3    7 | 8 | 9
//
// so "5" and "b2" are the centre, "1" and "a1" the top left, "9" and "c3" the bottom right.
//
// Params (all optional):
// - first: "join" (default: X is the first player to join) or "random" (X is drawn with the
//   bot's seeded randomness). X moves first.
// - move_timeout_ms: how long a player has for each move, in ms (integer, 1000 to 86400000,
//   default 60000).
// - on_timeout: what happens when that time runs out: "forfeit" (default: the player who ran out
//   loses the game) or "random_move" (the bot plays a random free cell for them).
//
// Rules:
// - The players are the first two participants to take invite (player) seats, in the order they
//   joined (those already seated when the bot is attached count in seat order). Spectators and
//   later arrivals watch. The game starts as soon as two players are in.
// - A move is a public message or one addressed to the bot: text "5" (a cell 1-9), "b2" (a
//   coordinate, "2b" works too), optionally after "move", "play" or "cell" ("move 5"), or data
//   {"cell": 5} (or {"cell": "b2"}); "resign" (or data {"action": "resign"}) gives up the game.
// - What counts as a move attempt: text that is "resign", a cell, a coordinate or shaped like one
//   ("0", "12", "d4"), or one word after "move", "play" or "cell" ("play x" is a bad move); data
//   with a "cell" or an "action" key. Anything else is chat and is ignored.
// - Violations go privately to whoever made them and change nothing: NOT_STARTED (fewer than two
//   players yet), BAD_TURN (you are not a player, or it is not your turn: checked before the move
//   itself), BAD_MOVE (not a cell 1-9, or the cell is taken: the message lists the free cells),
//   GAME_OVER (the game has ended). A player may resign at any time, in turn or not.
// - After every move the bot posts the board and whose turn it is, publicly, with data
//   {type: "move", player, mark, cell, board: [9 x "X" | "O" | null, cell 1 first], turn,
//   status: "playing" | "win" | "draw", deadline, timeout}. deadline is when the player to move
//   runs out of time (ms since the epoch); timeout is true for a move the bot made for a player
//   who ran out of time.
// - The game ends with three in a row, a full board, a resignation, a timeout (with "forfeit"),
//   or a player leaving the channel (they forfeit). The bot then posts {type: "result", result:
//   "win" | "draw", winner, loser, reason, board} and ends its run (ctx.end): the server reveals
//   its seed, and later messages are no longer its events.

const MARKS = ["X", "O"];
const LINES = [
  [0, 1, 2], [3, 4, 5], [6, 7, 8],
  [0, 3, 6], [1, 4, 7], [2, 5, 8],
  [0, 4, 8], [2, 4, 6],
];
const TIMER = "turn";
const PARAMS = ["first", "move_timeout_ms", "on_timeout"];

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params === null || params === undefined ? {} : params;
    this.game = ctx.get_state();
  }

  on_init() {
    const params = this.params;
    if (typeof params !== "object" || Array.isArray(params)) {
      throw new Error("params must be an object");
    }
    for (const key of Object.keys(params)) {
      if (!PARAMS.includes(key)) {
        throw new Error(`unknown param ${key}; the params are ${PARAMS.join(", ")}`);
      }
    }
    const first = choiceParam(params, "first", ["join", "random"]);
    const timeout = integerParam(params, "move_timeout_ms", 60000, 1000, 86400000);
    const onTimeout = choiceParam(params, "on_timeout", ["forfeit", "random_move"]);
    this.game = {
      phase: "waiting",
      first,
      move_timeout_ms: timeout,
      on_timeout: onTimeout,
      players: [],
      board: [null, null, null, null, null, null, null, null, null],
      turn: 0,
      moves: 0,
      deadline: null,
    };
    this.ctx.post({
      text:
        "TicTacToeBot: the game starts when two players are in. Cells are numbered 1-9 like a " +
        "phone keypad (1 2 3 on top, 7 8 9 at the bottom) or named a1-c3 (column letter, row " +
        `digit). Post "5", "b2" or "resign". Each move has ${seconds(timeout)} s; on timeout: ` +
        `${onTimeout === "forfeit" ? "the player loses" : "the bot plays a random cell"}.`,
      data: { type: "rules", first, move_timeout_ms: timeout, on_timeout: onTimeout },
    });
    for (const player of this.ctx.players()) {
      this.addPlayer(player);
    }
    this.maybeStart();
    this.save();
  }

  on_join(player) {
    if (!this.game || this.game.phase !== "waiting") {
      return;
    }
    this.addPlayer(player);
    this.maybeStart();
    this.save();
  }

  on_leave(player) {
    const game = this.game;
    if (!game || game.phase === "over") {
      return;
    }
    const index = game.players.findIndex((p) => p.slot === player.slot);
    if (index < 0) {
      return;
    }
    if (game.phase === "waiting") {
      game.players.splice(index, 1);
    } else {
      const name = game.players[index].name;
      this.finish(1 - index, "left", `${name} left the game and forfeits`);
    }
    this.save();
  }

  on_message(msg) {
    const game = this.game;
    if (!game || msg.kind !== "user") {
      return;
    }
    if (msg.private && msg.to !== this.ctx.bot_slot) {
      return;
    }
    const move = parseMove(msg.body);
    if (move === null) {
      return;
    }
    if (game.phase === "over") {
      return this.violation(msg.sender, "GAME_OVER", "The game is over.");
    }
    if (game.phase === "waiting") {
      return this.violation(msg.sender, "NOT_STARTED",
        `The game starts when two players are in (${game.players.length} so far).`);
    }
    const index = game.players.findIndex((p) => p.slot === msg.sender);
    if (index < 0) {
      return this.violation(msg.sender, "BAD_TURN", "You are not a player in this game.");
    }
    if (move.kind === "resign") {
      this.finish(1 - index, "resigned", `${game.players[index].name} resigned`);
      this.save();
      return;
    }
    if (index !== game.turn) {
      const next = game.players[game.turn];
      return this.violation(msg.sender, "BAD_TURN",
        `It is ${next.name}'s turn (${MARKS[game.turn]}), not yours.`);
    }
    const free = freeCells(game.board);
    if (move.kind === "bad") {
      return this.violation(msg.sender, "BAD_MOVE",
        `${move.reason} Free cells: ${free.join(", ")}.`);
    }
    if (game.board[move.cell - 1] !== null) {
      return this.violation(msg.sender, "BAD_MOVE",
        `Cell ${move.cell} is taken. Free cells: ${free.join(", ")}.`);
    }
    this.play(move.cell, false);
    this.save();
  }

  on_timer(tag) {
    const game = this.game;
    // Only the current turn's clock counts: another tag, a finished game, or a clock that
    // fires before the current deadline (one set for an earlier turn) changes nothing.
    if (!game || tag !== TIMER || game.phase !== "playing" || this.ctx.now() < game.deadline) {
      return;
    }
    const player = game.players[game.turn];
    if (game.on_timeout === "forfeit") {
      this.finish(1 - game.turn, "timeout", `${player.name} ran out of time and forfeits`);
    } else {
      const free = freeCells(game.board);
      this.play(free[this.ctx.random_int(0, free.length - 1)], true);
    }
    this.save();
  }

  addPlayer(player) {
    const game = this.game;
    if (game.players.length >= 2 || game.players.some((p) => p.slot === player.slot)) {
      return;
    }
    if (!this.ctx.slots().some((s) => s.slot === player.slot && s.kind === "invite")) {
      return;
    }
    game.players.push({ slot: player.slot, name: player.name });
  }

  maybeStart() {
    const game = this.game;
    if (game.phase !== "waiting" || game.players.length < 2) {
      return;
    }
    if (game.first === "random" && this.ctx.random_int(0, 1) === 1) {
      game.players.reverse();
    }
    game.phase = "playing";
    game.turn = 0;
    this.startTurn();
    const [x, o] = game.players;
    this.ctx.post({
      text:
        `Game on! ${x.name} is X, ${o.name} is O.\n${drawBoard(game.board)}\n` +
        `${x.name} (X), your move: post a cell number 1-9 or a coordinate like "b2" ` +
        `(${seconds(game.move_timeout_ms)} s).`,
      data: {
        type: "start",
        x: x.slot,
        o: o.slot,
        board: game.board,
        turn: x.slot,
        status: "playing",
        deadline: game.deadline,
      },
    });
  }

  // Puts the mark of the player to move on `cell` (1-9, free), posts the board, and ends the
  // game on a line or a full board.
  play(cell, timedOut) {
    const game = this.game;
    const mover = game.players[game.turn];
    const mark = MARKS[game.turn];
    game.board[cell - 1] = mark;
    game.moves += 1;
    const line = LINES.find((l) => l.every((i) => game.board[i] === mark));
    let status = "playing";
    if (line) {
      status = "win";
    } else if (game.moves === 9) {
      status = "draw";
    }
    let next = null;
    if (status === "playing") {
      game.turn = 1 - game.turn;
      next = game.players[game.turn];
      this.startTurn();
    }
    const how = timedOut ? `ran out of time; the bot played ${cell} for them` : `played ${cell}`;
    let after;
    if (next) {
      after = `${next.name} (${MARKS[game.turn]}), your move. Free cells: ` +
        `${freeCells(game.board).join(", ")}.`;
    } else if (status === "win") {
      after = `Three in a row: ${line.map((i) => i + 1).join("-")}.`;
    } else {
      after = "The board is full.";
    }
    this.ctx.post({
      text: `${mover.name} (${mark}) ${how} (${coordinate(cell)}).\n${drawBoard(game.board)}\n${after}`,
      data: {
        type: "move",
        player: mover.slot,
        mark,
        cell,
        board: game.board,
        turn: next ? next.slot : null,
        status,
        deadline: next ? game.deadline : null,
        timeout: timedOut,
      },
    });
    if (status === "win") {
      this.finish(game.players.indexOf(mover), "three_in_a_row", `${mover.name} (${mark}) wins`);
    } else if (status === "draw") {
      this.finish(null, "full_board", "Draw");
    }
  }

  startTurn() {
    const game = this.game;
    game.deadline = this.ctx.now() + game.move_timeout_ms;
    this.ctx.set_timer(game.move_timeout_ms, TIMER);
  }

  // Ends the game: `winner` is a player index, or null for a draw.
  finish(winner, reason, headline) {
    const game = this.game;
    game.phase = "over";
    game.deadline = null;
    this.ctx.cancel_timer(TIMER);
    const won = winner !== null;
    const line = won ? `${headline}; ${game.players[winner].name} wins.` : `${headline}.`;
    this.ctx.post({
      text: `Game over: ${line}\n${drawBoard(game.board)}`,
      data: {
        type: "result",
        result: won ? "win" : "draw",
        winner: won ? game.players[winner].slot : null,
        loser: won ? game.players[1 - winner].slot : null,
        reason,
        board: game.board,
        moves: game.moves,
      },
    });
    this.ctx.end(endReason(line));
  }

  violation(slot, code, message) {
    this.ctx.post_to(slot, {
      text: `${code}: ${message}`,
      data: { type: "violation", code, message },
    });
  }

  save() {
    this.ctx.set_state(this.game);
  }
}

function choiceParam(params, name, choices) {
  const value = params[name];
  if (value === undefined) {
    return choices[0];
  }
  if (!choices.includes(value)) {
    throw new Error(`params.${name} must be ${choices.map((c) => `"${c}"`).join(" or ")}`);
  }
  return value;
}

function integerParam(params, name, fallback, min, max) {
  const value = params[name];
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`params.${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

// `text` cut to at most 200 bytes of UTF-8, the cap on ctx.end's reason.
function endReason(text) {
  const size = (ch) => {
    const code = ch.codePointAt(0);
    return code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  };
  let total = 0;
  for (const ch of text) {
    total += size(ch);
  }
  if (total <= 200) {
    return text;
  }
  let bytes = 0;
  let out = "";
  for (const ch of text) {
    if (bytes + size(ch) > 197) {
      break;
    }
    bytes += size(ch);
    out += ch;
  }
  return out + "...";
}

function seconds(ms) {
  return Math.round(ms / 100) / 10;
}

function freeCells(board) {
  const free = [];
  for (let i = 0; i < 9; i++) {
    if (board[i] === null) {
      free.push(i + 1);
    }
  }
  return free;
}

function coordinate(cell) {
  return "abc"[(cell - 1) % 3] + String(Math.floor((cell - 1) / 3) + 1);
}

// The board for a reader: marks, and the numbers of the free cells.
function drawBoard(board) {
  const cell = (i) => (board[i] === null ? String(i + 1) : board[i]);
  const row = (r) => ` ${cell(3 * r)} | ${cell(3 * r + 1)} | ${cell(3 * r + 2)}`;
  return [row(0), "---+---+---", row(1), "---+---+---", row(2)].join("\n");
}

// A cell 1-9 from "5", "b2" or "2b", or null.
function cellFromText(text) {
  if (/^[1-9]$/.test(text)) {
    return Number(text);
  }
  let match = /^([abc])([123])$/.exec(text);
  if (!match) {
    match = /^([123])([abc])$/.exec(text);
    if (match) {
      match = [match[0], match[2], match[1]];
    }
  }
  if (!match) {
    return null;
  }
  return (Number(match[2]) - 1) * 3 + "abc".indexOf(match[1]) + 1;
}

const BAD_CELL = 'A move is a cell 1-9 ("5", {"cell": 5}) or a coordinate a1-c3 ("b2").';

// A move from a message body: {kind: "cell", cell}, {kind: "resign"}, {kind: "bad", reason},
// or null when the message is just chat.
function parseMove(body) {
  const data = body.data;
  if (data !== null && typeof data === "object") {
    if ("cell" in data) {
      const value = data.cell;
      let cell = null;
      if (Number.isInteger(value) && value >= 1 && value <= 9) {
        cell = value;
      } else if (typeof value === "string") {
        cell = cellFromText(value.trim().toLowerCase());
      }
      return cell === null ? { kind: "bad", reason: BAD_CELL } : { kind: "cell", cell };
    }
    if (data.action === "resign") {
      return { kind: "resign" };
    }
    if ("action" in data) {
      return { kind: "bad", reason: 'Actions are {"cell": n} and {"action": "resign"}.' };
    }
  }
  if (typeof body.text !== "string") {
    return null;
  }
  const text = body.text.trim().toLowerCase();
  if (text === "resign") {
    return { kind: "resign" };
  }
  const prefixed = /^(?:move|play|cell)(?:\s+|\s*:\s*)(\S+)$/.exec(text);
  const spec = prefixed ? prefixed[1] : text;
  const cell = cellFromText(spec);
  if (cell !== null) {
    return { kind: "cell", cell };
  }
  if (prefixed || /^-?\d+$/.test(spec) || /^[a-z]\d+$/.test(spec) || /^\d+[a-z]$/.test(spec)) {
    return { kind: "bad", reason: BAD_CELL };
  }
  return null;
}
