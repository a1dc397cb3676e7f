// GuessBot: players take turns guessing a secret number; the bot answers higher/lower with a
// hot/warm/cold hint. The number is fixed when the bot is attached: the bot posts a commitment
// to it at once and, when the game ends, reveals the number and the salt so anyone can recompute
// the commitment and check that the number never changed.
//
// Params: min, max (integers, default 1 and 100), turn_order: "join" (default) or "random".
//
// Rules:
// - Players are the participants in invite slots, in the order they joined (those already seated
//   when the bot is attached count in seat order). A rejoin keeps the player's place.
// - The game starts as soon as two players are in. With turn_order "join" the first to join plays
//   first; with "random" the order is shuffled with the bot's seeded randomness.
// - A move is a public or bot-addressed message: text "42", "guess 42" or "concede", or data
//   {"guess": 42} or {"action": "concede"}. Other messages are chat and are ignored.
// - A guess out of turn gets BAD_TURN, a malformed or out-of-range guess BAD_MOVE, a move before
//   the start GAME_NOT_STARTED, and after the end GAME_OVER; violations go privately to whoever
//   made them and change nothing.
// - "concede" takes the player out of the game (at any time). A player who leaves the channel is
//   out as well. When one player is left, they win; the number is revealed.
// - Guessing the number wins; the number is revealed.
// - The game's end ends the bot's run (ctx.end): the server reveals its seed at once, and later
//   messages are no longer its events.

const SCHEME = "mcp-multiplayer/commit/v1";

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params === null || typeof params !== "object" ? {} : params;
    this.game = ctx.get_state();
  }

  on_init() {
    const min = integerParam(this.params, "min", 1);
    const max = integerParam(this.params, "max", 100);
    if (min >= max) {
      throw new Error(`params.min (${min}) must be less than params.max (${max})`);
    }
    const turnOrder = this.params.turn_order === undefined ? "join" : this.params.turn_order;
    if (turnOrder !== "join" && turnOrder !== "random") {
      throw new Error('params.turn_order must be "join" or "random"');
    }
    const target = this.ctx.random_int(min, max);
    const salt = this.ctx.random_bytes(16);
    const commitment = this.ctx.commit(String(target), salt);
    this.game = {
      phase: "waiting",
      min,
      max,
      turn_order: turnOrder,
      target,
      salt,
      commitment,
      players: [],
      turn: 0,
      guesses: 0,
    };
    this.ctx.post({
      text:
        `GuessBot: I picked a secret number from ${min} to ${max} and committed to it: ` +
        `${commitment}. I reveal it with the salt at the end. ` +
        "The game starts when two players are in; moves: \"42\", \"guess 42\" or \"concede\".",
      data: {
        type: "commitment",
        scheme: SCHEME,
        commitment,
        channel_id: this.ctx.channel_id,
        bot_slot: this.ctx.bot_slot,
        min,
        max,
      },
    });
    for (const player of this.ctx.players()) {
      this.addPlayer(player);
    }
    this.maybeStart();
    this.save();
  }

  on_join(player) {
    if (!this.game) {
      return;
    }
    this.addPlayer(player);
    this.maybeStart();
    this.save();
  }

  on_leave(player) {
    if (!this.game || this.game.phase === "over") {
      return;
    }
    this.removePlayer(player.slot, `${player.name} left`);
    this.save();
  }

  on_message(msg) {
    if (!this.game || msg.kind !== "user") {
      return;
    }
    if (msg.private && msg.to !== this.ctx.bot_slot) {
      return;
    }
    const move = parseMove(msg.body);
    if (move === null) {
      return;
    }
    const game = this.game;
    const playerIndex = game.players.findIndex((p) => p.slot === msg.sender);
    if (game.phase === "waiting") {
      return this.violation(msg.sender, "GAME_NOT_STARTED",
        `The game starts when two players are in (${game.players.length} so far).`);
    }
    if (game.phase === "over") {
      return this.violation(msg.sender, "GAME_OVER", "The game is over.");
    }
    if (playerIndex < 0) {
      return this.violation(msg.sender, "BAD_TURN", "You are not a player in this game.");
    }
    if (move.kind === "concede") {
      this.removePlayer(msg.sender, `${game.players[playerIndex].name} conceded`);
      this.save();
      return;
    }
    if (move.kind === "bad") {
      return this.violation(msg.sender, "BAD_MOVE", move.reason);
    }
    if (playerIndex !== game.turn) {
      return this.violation(msg.sender, "BAD_TURN",
        `It is ${game.players[game.turn].name}'s turn, not yours.`);
    }
    const guess = move.guess;
    if (guess < game.min || guess > game.max) {
      return this.violation(msg.sender, "BAD_MOVE",
        `Guess a whole number from ${game.min} to ${game.max}.`);
    }
    game.guesses += 1;
    const player = game.players[playerIndex];
    if (guess === game.target) {
      this.finish(player, `${player.name} guessed it: ${guess}!`);
    } else {
      game.turn = (game.turn + 1) % game.players.length;
      const next = game.players[game.turn];
      const direction = guess < game.target ? "higher" : "lower";
      const warmth = hint(Math.abs(guess - game.target), game.max - game.min + 1);
      this.ctx.post({
        text: `${player.name} guessed ${guess}: ${direction}, ${warmth}. ${next.name}, your turn.`,
        data: {
          type: "hint",
          player: player.slot,
          guess,
          direction,
          hint: warmth,
          guesses: game.guesses,
          next: next.slot,
        },
      });
    }
    this.save();
  }

  addPlayer(player) {
    const game = this.game;
    if (game.phase === "over" || !this.isInviteSlot(player.slot)) {
      return;
    }
    const known = game.players.find((p) => p.slot === player.slot);
    if (known) {
      known.name = player.name;
      return;
    }
    game.players.push({ slot: player.slot, name: player.name });
  }

  isInviteSlot(slot) {
    return this.ctx.slots().some((s) => s.slot === slot && s.kind === "invite");
  }

  maybeStart() {
    const game = this.game;
    if (game.phase !== "waiting" || game.players.length < 2) {
      return;
    }
    if (game.turn_order === "random") {
      for (let i = game.players.length - 1; i > 0; i--) {
        const j = this.ctx.random_int(0, i);
        [game.players[i], game.players[j]] = [game.players[j], game.players[i]];
      }
    }
    game.phase = "playing";
    game.turn = 0;
    const order = game.players.map((p) => p.name).join(", ");
    const first = game.players[0];
    this.ctx.post({
      text:
        `Game on! Order: ${order}. ${first.name}, your turn: guess a number from ` +
        `${game.min} to ${game.max} (post "42" or {"guess": 42}).`,
      data: {
        type: "start",
        order: game.players.map((p) => p.slot),
        next: first.slot,
        min: game.min,
        max: game.max,
      },
    });
  }

  removePlayer(slot, reason) {
    const game = this.game;
    const index = game.players.findIndex((p) => p.slot === slot);
    if (index < 0) {
      return;
    }
    game.players.splice(index, 1);
    if (game.phase !== "playing") {
      return;
    }
    if (game.players.length === 1) {
      const winner = game.players[0];
      this.finish(winner, `${reason}; ${winner.name} wins.`);
      return;
    }
    if (game.players.length === 0) {
      this.finish(null, `${reason}; nobody is left.`);
      return;
    }
    if (index < game.turn) {
      game.turn -= 1;
    }
    game.turn %= game.players.length;
    const next = game.players[game.turn];
    this.ctx.post({
      text: `${reason}. ${next.name}, your turn.`,
      data: { type: "player_out", player: slot, next: next.slot },
    });
  }

  finish(winner, headline) {
    const game = this.game;
    game.phase = "over";
    this.ctx.post({
      text:
        `${headline} The number was ${game.target}. Reveal: salt ${game.salt}, commitment ` +
        `${game.commitment} (${SCHEME}: sha256 over the length-prefixed label, channel ` +
        `${this.ctx.channel_id}, bot ${this.ctx.bot_slot}, value "${game.target}" and salt).`,
      data: {
        type: "reveal",
        scheme: SCHEME,
        target: game.target,
        value: String(game.target),
        salt: game.salt,
        channel_id: this.ctx.channel_id,
        bot_slot: this.ctx.bot_slot,
        commitment: game.commitment,
        winner: winner === null ? null : winner.slot,
        guesses: game.guesses,
      },
    });
    // Game over: the run ends, so the server reveals the seed now and anyone can replay the
    // whole game from the transcript without waiting for the channel to close.
    this.ctx.end(headline);
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

function integerParam(params, name, fallback) {
  const value = params[name];
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isSafeInteger(value)) {
    throw new Error(`params.${name} must be an integer`);
  }
  return value;
}

// A move from a message body, or null when the message is just chat.
function parseMove(body) {
  const data = body.data;
  if (data !== null && typeof data === "object") {
    if (data.action === "concede") {
      return { kind: "concede" };
    }
    if ("guess" in data || data.action === "guess") {
      const guess = "guess" in data ? data.guess : data.value;
      if (Number.isSafeInteger(guess)) {
        return { kind: "guess", guess };
      }
      return { kind: "bad", reason: 'A guess is a whole number, e.g. {"guess": 42}.' };
    }
    if ("action" in data) {
      return { kind: "bad", reason: 'Actions are {"guess": n} and {"action": "concede"}.' };
    }
  }
  if (typeof body.text !== "string") {
    return null;
  }
  const text = body.text.trim().toLowerCase();
  if (text === "concede") {
    return { kind: "concede" };
  }
  const match = /^(?:guess\s*:?\s*)?(-?\d+)$/.exec(text);
  if (match) {
    const guess = Number(match[1]);
    if (Number.isSafeInteger(guess)) {
      return { kind: "guess", guess };
    }
  }
  if (text.startsWith("guess")) {
    return { kind: "bad", reason: 'Write a guess as "42" or "guess 42".' };
  }
  return null;
}

// How close a wrong guess is, relative to the size of the range.
function hint(distance, span) {
  if (distance <= Math.max(1, Math.ceil(span * 0.03))) {
    return "hot";
  }
  if (distance <= Math.max(2, Math.ceil(span * 0.1))) {
    return "warm";
  }
  return "cold";
}
