// RockPaperScissorsBot: two players play rock-paper-scissors, best of N rounds. Rock beats
// scissors, scissors beat paper, paper beats rock; the same move twice is a draw and the round is
// replayed. The first to win (N+1)/2 rounds wins the game.
//
// Moves are secret until both are in: each player sends theirs PRIVATELY to the bot. The bot
// then posts publicly that the player has moved, with a commitment to the move (never the move
// itself); when both moves are in, it reveals both moves with their salts, so anyone can check
// each commitment:
//   commitment = "sha256:" + hex(SHA-256(lp("mcp-multiplayer/commit/v1") || lp(channel_id) ||
//                lp(bot_slot) || lp(move) || lp(salt)))
//   lp(x) = 8-byte big-endian length of x || x   (strings as UTF-8, the salt as raw bytes)
// where move is "rock", "paper" or "scissors" and salt is the revealed hex decoded to 16 bytes.
//
// Params (all optional):
// - best_of: the number of rounds, odd, 1 to 99 (default 3): first to (best_of+1)/2 wins.
// - move_timeout_ms: how long the players have to move in each round, in ms (integer, 1000 to
//   86400000, default 60000). The clock starts when the round does and covers both moves.
// - on_timeout: what happens to a player who has not moved when it runs out: "forfeit" (default:
//   they lose the game; if neither player moved, both forfeit and the game ends as a draw) or
//   "random_move" (the bot picks a random move for them, commits to it and the round goes on).
//
// Rules:
// - The players are the first two participants to take invite (player) seats, in the order they
//   joined (those already seated when the bot is attached count in seat order). Spectators and
//   later arrivals watch. The game starts as soon as two players are in.
// - A move is a private message to the bot (to: the bot's slot): text "rock", "paper",
//   "scissors" or "r", "p", "s" (optionally after "play" or "move"), or data {"move": "rock"}.
// - What counts as a move attempt: text that is one of those words, or one word after "play" or
//   "move"; data with a "move" key. Anything else is chat and is ignored.
// - Violations go privately to whoever made them and change nothing: NOT_STARTED (fewer than two
//   players yet), BAD_TURN (you are not a player, or you already moved this round), BAD_MOVE (not
//   rock/paper/scissors, or a move posted publicly: everyone has seen it, so it does not count;
//   send it privately), GAME_OVER (the game has ended).
// - Posts: {type: "start"}; {type: "moved", round, player, commitment, waiting_for, deadline,
//   timeout} when a player's move is in; {type: "reveal", round, moves, salts, commitments,
//   winner (null on a draw), score, status, next_round, deadline} when both are; at the end
//   {type: "result", result: "win" | "draw", winner, loser, reason, score, unrevealed} (unrevealed:
//   the moves, salts and commitments of a round cut short, so those commitments can be checked
//   too).
// - The game ends when a player reaches (best_of+1)/2 round wins, on a timeout with "forfeit", or
//   when a player leaves the channel (they forfeit). The bot then ends its run (ctx.end): the
//   server reveals its seed, and later messages are no longer its events.

const MOVES = ["rock", "paper", "scissors"];
const SCHEME = "mcp-multiplayer/commit/v1";
const TIMER = "turn";
const PARAMS = ["best_of", "move_timeout_ms", "on_timeout"];

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
    const bestOf = integerParam(params, "best_of", 3, 1, 99);
    if (bestOf % 2 === 0) {
      throw new Error(`params.best_of must be odd, got ${bestOf}`);
    }
    const timeout = integerParam(params, "move_timeout_ms", 60000, 1000, 86400000);
    const onTimeout = params.on_timeout === undefined ? "forfeit" : params.on_timeout;
    if (onTimeout !== "forfeit" && onTimeout !== "random_move") {
      throw new Error('params.on_timeout must be "forfeit" or "random_move"');
    }
    this.game = {
      phase: "waiting",
      best_of: bestOf,
      wins_needed: (bestOf + 1) / 2,
      move_timeout_ms: timeout,
      on_timeout: onTimeout,
      players: [],
      score: [0, 0],
      round: 0,
      pending: [null, null],
      deadline: null,
    };
    this.ctx.post({
      text:
        `RockPaperScissorsBot: best of ${bestOf}, first to ${this.game.wins_needed} round wins. ` +
        "The game starts when two players are in. Send your move PRIVATELY to the bot: " +
        '"rock", "paper" or "scissors" (public moves do not count). Each round has ' +
        `${seconds(timeout)} s; on timeout: ` +
        `${onTimeout === "forfeit" ? "the missing player loses" : "the bot picks a random move"}.`,
      data: {
        type: "rules",
        best_of: bestOf,
        wins_needed: this.game.wins_needed,
        move_timeout_ms: timeout,
        on_timeout: onTimeout,
      },
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
      this.finish(1 - index, "left", `${game.players[index].name} left the game and forfeits`);
    }
    this.save();
  }

  on_message(msg) {
    const game = this.game;
    if (!game || msg.kind !== "user") {
      return;
    }
    const toBot = msg.private && msg.to === this.ctx.bot_slot;
    if (msg.private && !toBot) {
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
    if (!toBot) {
      return this.violation(msg.sender, "BAD_MOVE",
        "Moves must be sent privately to the bot (to: " + this.ctx.bot_slot + "). This one " +
        "was public, so everyone has seen it: it does not count. Send rock, paper or scissors " +
        "privately.");
    }
    if (game.pending[index] !== null) {
      return this.violation(msg.sender, "BAD_TURN",
        `You already moved in round ${game.round}; waiting for ${game.players[1 - index].name}.`);
    }
    if (move.kind === "bad") {
      return this.violation(msg.sender, "BAD_MOVE", move.reason);
    }
    this.ctx.post_to(msg.sender, {
      text: `Your move for round ${game.round}: ${move.move}.`,
      data: { type: "your_move", round: game.round, move: move.move },
    });
    this.record(index, move.move, false);
    if (game.pending[1 - index] !== null) {
      this.reveal();
    }
    this.save();
  }

  on_timer(tag) {
    const game = this.game;
    // Only the current round's clock counts: another tag, a finished game, or a clock that
    // fires before the current deadline (one set for an earlier round) changes nothing.
    if (!game || tag !== TIMER || game.phase !== "playing" || this.ctx.now() < game.deadline) {
      return;
    }
    const missing = [0, 1].filter((i) => game.pending[i] === null);
    if (missing.length === 0) {
      return;
    }
    if (game.on_timeout === "random_move") {
      for (const i of missing) {
        this.record(i, MOVES[this.ctx.random_int(0, 2)], true);
      }
      this.reveal();
    } else if (missing.length === 2) {
      this.finish(null, "timeout", "Neither player moved in time: both forfeit");
    } else {
      const late = missing[0];
      this.finish(1 - late, "timeout", `${game.players[late].name} ran out of time and forfeits`);
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
    game.phase = "playing";
    this.startRound();
    const [a, b] = game.players;
    this.ctx.post({
      text:
        `Game on: ${a.name} vs ${b.name}, best of ${game.best_of}. Round 1: send "rock", ` +
        `"paper" or "scissors" PRIVATELY to the bot within ${seconds(game.move_timeout_ms)} s.`,
      data: {
        type: "start",
        players: [a.slot, b.slot],
        best_of: game.best_of,
        wins_needed: game.wins_needed,
        round: game.round,
        deadline: game.deadline,
      },
    });
  }

  startRound() {
    const game = this.game;
    game.round += 1;
    game.pending = [null, null];
    game.deadline = this.ctx.now() + game.move_timeout_ms;
    this.ctx.set_timer(game.move_timeout_ms, TIMER);
  }

  // Keeps player `index`'s move for this round and publishes a commitment to it.
  record(index, move, timedOut) {
    const game = this.game;
    const salt = this.ctx.random_bytes(16);
    const commitment = this.ctx.commit(move, salt);
    game.pending[index] = { move, salt, commitment };
    const player = game.players[index];
    const other = game.players[1 - index];
    const waiting = game.pending[1 - index] === null;
    const how = timedOut ? "ran out of time; the bot moved for them" : "has moved";
    this.ctx.post({
      text:
        `Round ${game.round}: ${player.name} ${how} (commitment ${commitment}).` +
        (waiting ? ` Waiting for ${other.name}.` : ""),
      data: {
        type: "moved",
        round: game.round,
        player: player.slot,
        commitment,
        waiting_for: waiting ? other.slot : null,
        deadline: game.deadline,
        timeout: timedOut,
      },
    });
  }

  // Both moves are in: reveals them, scores the round, and starts the next or ends the game.
  reveal() {
    const game = this.game;
    const [a, b] = game.pending;
    const outcome = beats(a.move, b.move) ? 0 : beats(b.move, a.move) ? 1 : null;
    if (outcome !== null) {
      game.score[outcome] += 1;
    }
    const round = game.round;
    const slots = game.players.map((p) => p.slot);
    const over = outcome !== null && game.score[outcome] >= game.wins_needed;
    const revealed = this.unrevealed();
    if (!over) {
      this.startRound();
    }
    const [pa, pb] = game.players;
    const result = outcome === null
      ? "a draw: the round is replayed"
      : `${game.players[outcome].name} wins the round`;
    const next = over ? "" : ` Round ${game.round}: send your moves privately.`;
    this.ctx.post({
      text:
        `Round ${round}: ${pa.name} played ${a.move} (salt ${a.salt}), ${pb.name} played ` +
        `${b.move} (salt ${b.salt}): ${result}. Score: ${pa.name} ${game.score[0]}, ` +
        `${pb.name} ${game.score[1]}.${next}`,
      data: {
        type: "reveal",
        round,
        scheme: SCHEME,
        channel_id: this.ctx.channel_id,
        bot_slot: this.ctx.bot_slot,
        moves: revealed.moves,
        salts: revealed.salts,
        commitments: revealed.commitments,
        winner: outcome === null ? null : slots[outcome],
        score: { [slots[0]]: game.score[0], [slots[1]]: game.score[1] },
        status: over ? "over" : "playing",
        next_round: over ? null : game.round,
        deadline: over ? null : game.deadline,
      },
    });
    if (over) {
      game.pending = [null, null];
      this.finish(outcome, "rounds", `${game.players[outcome].name} wins the game`);
    }
  }

  // The moves of this round that are in, with their salts and commitments, by slot.
  unrevealed() {
    const game = this.game;
    const out = { moves: {}, salts: {}, commitments: {} };
    game.pending.forEach((p, i) => {
      if (p !== null) {
        const slot = game.players[i].slot;
        out.moves[slot] = p.move;
        out.salts[slot] = p.salt;
        out.commitments[slot] = p.commitment;
      }
    });
    return out;
  }

  // Ends the game: `winner` is a player index, or null for a draw.
  finish(winner, reason, headline) {
    const game = this.game;
    game.phase = "over";
    game.deadline = null;
    this.ctx.cancel_timer(TIMER);
    const slots = game.players.map((p) => p.slot);
    const won = winner !== null;
    const [pa, pb] = game.players;
    const line =
      `${headline}. Final score: ${pa.name} ${game.score[0]}, ${pb.name} ${game.score[1]}.`;
    this.ctx.post({
      text: `Game over: ${line}`,
      data: {
        type: "result",
        result: won ? "win" : "draw",
        winner: won ? slots[winner] : null,
        loser: won ? slots[1 - winner] : null,
        reason,
        score: { [slots[0]]: game.score[0], [slots[1]]: game.score[1] },
        rounds: game.round,
        scheme: SCHEME,
        channel_id: this.ctx.channel_id,
        bot_slot: this.ctx.bot_slot,
        unrevealed: this.unrevealed(),
      },
    });
    game.pending = [null, null];
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

function beats(a, b) {
  return (a === "rock" && b === "scissors") || (a === "scissors" && b === "paper") ||
    (a === "paper" && b === "rock");
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

const BAD_MOVE = 'A move is "rock", "paper" or "scissors" ("r", "p", "s"), or {"move": "rock"}.';

function moveFromWord(word) {
  for (const move of MOVES) {
    if (word === move || word === move[0]) {
      return move;
    }
  }
  return null;
}

// A move from a message body: {kind: "move", move}, {kind: "bad", reason}, or null when the
// message is just chat.
function parseMove(body) {
  const data = body.data;
  if (data !== null && typeof data === "object" && "move" in data) {
    const move = typeof data.move === "string" ? moveFromWord(data.move.trim().toLowerCase()) : null;
    return move === null ? { kind: "bad", reason: BAD_MOVE } : { kind: "move", move };
  }
  if (typeof body.text !== "string") {
    return null;
  }
  const text = body.text.trim().toLowerCase();
  const prefixed = /^(?:move|play)(?:\s+|\s*:\s*)(\S+)$/.exec(text);
  const move = moveFromWord(prefixed ? prefixed[1] : text);
  if (move !== null) {
    return { kind: "move", move };
  }
  return prefixed ? { kind: "bad", reason: BAD_MOVE } : null;
}
