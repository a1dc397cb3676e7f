// BlackjackBot: 1 to 5 players against the dealer, with a provably fair shoe. Nobody picks the
// deck alone: each shoe is shuffled from a random value the bot committed to before anyone sent
// anything, mixed with text every player sends the bot privately; the bot commits to the shoe
// order when it shuffles and reveals it, with everything needed to recompute it, when the shoe
// ends. The dealer's hole card is committed when dealt and revealed when it turns.
//
// Params (all optional): chips (1000 each), min_bet (10), max_bet (500), decks (6, from 1 to 8),
// hands (10: the game ends after this many hands), min_players (1: the first shoe starts when this
// many players are seated), move_timeout_ms (60000), bet_timeout_ms and entropy_timeout_ms (both
// default to move_timeout_ms; every timeout from 1000 to 86400000 ms), on_timeout: "forfeit" (default) or "random_move".
//
// Table rules:
// - Dealer hits soft 17 (H17). Blackjack pays 3:2, rounded down to a whole chip (bet 15 wins 22).
// - Double on any first two cards (after a split too), for one more card. Split a pair (two cards
//   of the same rank: K-Q is no pair) once; no re-split. Split aces get one card each. A 21 after
//   a split is not a blackjack. Both split hands get their second card at the split.
// - No insurance, no surrender. A hand reaching 21 stands by itself.
// - The dealer peeks when the up card is an ace or a ten-value card: a dealer blackjack ends the
//   hand at once (player blackjacks push, other hands lose their bet).
// - Win pays 1:1, push returns the bet. Bets are whole chips from min_bet to max_bet (and no more
//   than you have); a player with fewer than min_bet chips is broke and sits out.
// - Seats: players in invite slots, in the order they joined, at most 5. Someone joining during a
//   hand plays from the next betting round. A rejoin keeps the player's chips. A sixth player is
//   told privately that the table is full (a TABLE_FULL notice) and can watch.
//
// A round, step by step:
// 1. Entropy (before every shoe): send the bot any text privately (to the bot's slot), e.g.
//    "entropy: purple otters 8812", or data {"entropy": "..."}. Your first private message to the
//    bot in the round is your entropy: the whole text, or data.entropy when it is a string. The bot
//    answers publicly with a commitment to it. When every player of the round has sent one, or
//    entropy_timeout_ms after the round opened, the shoe is shuffled; a player who sent nothing
//    contributes the empty string. Players who join after the shuffle add entropy to the next shoe.
// 2. Betting: "bet 50" or data {"bet": 50}, once per hand. The hand is dealt when every player who
//    can bet has bet, or bet_timeout_ms after betting opened; players without a bet sit out. If
//    nobody bets, the game ends (an idle table).
// 3. Play, in seat order, each hand in turn: "hit", "stand", "double", "split" (or data
//    {"action": "hit"}). A turn lasts move_timeout_ms; then on_timeout "forfeit" stands for you
//    (a forfeited turn is a stand: the bet stays in play), "random_move" plays a random legal
//    action. After every action the bot posts the table (cards, totals, the dealer's up card,
//    whose turn it is, the deadline).
// 4. The dealer turns the hole card (card and salt, checkable against its commitment), draws to
//    the rule, and the hand is settled.
// Between hands, when fewer than a quarter of the shoe remains (the cut card; at a full table with
// few decks, when fewer than 6 cards per player plus 6 remain) the shoe ends: the bot reveals it
// and opens an entropy round for the next one. If a shoe runs out in the middle of a hand anyway,
// that hand is void: every stake goes back and the next shoe is shuffled.
// The game ends after `hands` hands, or when every player is broke or gone, with the standings and
// the reveal of the last shoe; then the bot's run ends (ctx.end) and the server reveals its seed.
// The final post's data.reason is a code: "hands_played", "all_broke" (every player is broke or
// gone), "everyone_left" or "nobody_bet".
// A player who leaves forfeits the chips at stake (bet or hands in play) to the house.
// Violations go privately to whoever made them and change nothing: NOT_STARTED (a move before the
// first betting round), BAD_TURN (not your turn, or not seated), BAD_MOVE (an illegal action or
// bet, with what is legal), GAME_OVER.
//
// Posts (public unless noted), by data.type:
// - "rules" {cfg, max_seats, scheme, shoe_label} when the bot is attached; "seated" {slot, chips,
//   phase} and "left" {slot, forfeited, chips} as players come and go;
// - "entropy_round" {shoe, bot_random_commitment, players, deadline, channel_id, bot_slot};
//   "entropy_received" {slot, commitment, waiting}; "shuffle" {shoe, decks, cards, commitment,
//   bot_random_commitment, entries: [{slot, commitment, missing}]};
// - "betting" {hand, min_bet, max_bet, players, chips, deadline}; "bet" {slot, amount, chips,
//   waiting};
// - "table" {hand, action, hands, dealer: {up, hole_commitment}, turn, deadline, chips, draws}
//   after the deal and after every action;
// - "result" {hand, dealer: {cards, total, blackjack, bust}, hole, results, chips, house, draws}
//   once per hand; "void" {hand, hole, chips, house} for a hand the shoe could not finish;
// - "shoe_reveal" (below) when a shoe ends; at the end "final" {reason, hands_played, standings,
//   house, hole, draws}, then the last shoe's reveal and, if an entropy round was open,
//   "round_reveal" {shoe, bot_random, bot_random_salt, bot_random_commitment};
// - privately: "violation" {code, message} and "notice" {code, message} (TABLE_FULL).
// draws lists the cards dealt since the last post, each with its position in the shoe's order.
//
// The shoe (anyone can recompute it from the reveal):
// - Cards are codes rank+suit: ranks A23456789TJQK, suits S H D C. The unshuffled shoe is, for
//   each deck in turn, the suits S, H, D, C, each from A to K: "AS2S...KS AH...KC" repeated.
// - When a round opens, the bot draws bot_random = ctx.random_bytes(32) (64 hex digits) and posts
//   commit(bot_random, salt) at once, before any player sends entropy.
// - h_i = sha256(entropy_i) in lowercase hex, for the round's players in the order the shuffle
//   post lists them (seat order); a player who sent nothing has entropy_i = "".
// - shoe_key = sha256("mcp-multiplayer/blackjack-shoe/v1|" + decks + "|" + bot_random + "|" + h_1
//   + "|" + ... + "|" + h_n), sha256 over UTF-8 giving lowercase hex.
// - The byte stream is block_0 || block_1 || ..., block_k = the 32 bytes of sha256(shoe_key + ":"
//   + k) (k in decimal). A draw below m takes the next 4 bytes as a big-endian u32 x, and is
//   x mod m, unless x >= 2^32 - (2^32 mod m), when it is thrown away and drawn again.
// - Fisher-Yates: for i from n-1 down to 1, j = draw below i+1, swap cards i and j. The result,
//   concatenated (2 characters a card), is the order; card number p (from 0) is dealt p-th.
// - The bot posts commit(order, salt) when it shuffles, and every card it deals names its position
//   in the order (the hole card's stays hidden until it turns). The shoe reveal gives the order,
//   its salt, bot_random with its salt, each h_i, the salt of each entropy commitment and the key.
// - Commitments are ctx.commit: sha256 over the length-prefixed "mcp-multiplayer/commit/v1",
//   channel id, bot slot, value and salt (docs/bot-api.md, Commitments).
// What this proves, honestly: bot_random is fixed by the seed committed when the bot was attached
// and by the seq of the event that opened the round, and it is committed before any entropy is
// sent, so nobody can change it after seeing entropy. No player can predict the order (bot_random
// is secret until the reveal) and no one player can choose it. Private messages stay private until
// the run ends (the channel then reveals them), so each player can check that their entropy went
// in unchanged. But the server knows the seed: it could tell the order to a colluding player, or
// let a player who sends last grind their entropy against a known bot_random; and it sees the
// private messages. This scheme rules out a dealer who changes the deck; it does not stop a
// server that colludes with a player.

const SCHEME = "mcp-multiplayer/commit/v1";
const SHOE_LABEL = "mcp-multiplayer/blackjack-shoe/v1";
const RANKS = "A23456789TJQK";
const SUITS = "SHDC";
const SYMBOLS = { S: "\u2660", H: "\u2665", D: "\u2666", C: "\u2663" };
const MAX_SEATS = 5;
const ACTIONS = ["hit", "stand", "double", "split"];

class ShoeEmpty extends Error {}

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params === null || typeof params !== "object" || Array.isArray(params) ? {} : params;
    this.g = ctx.get_state();
    this.out = [];
    this.draws = [];
    this.endReason = undefined;
  }

  on_init() {
    this.run(() => this.init(), null, true);
  }

  on_join(player) {
    this.run(() => this.join(player, true), null, false);
  }

  on_leave(player) {
    // If the shoe runs out, the hand is void (stakes back), and then the player leaves.
    this.run(() => this.leave(player), () => this.leave(player), false);
  }

  on_message(msg) {
    this.run(() => this.message(msg), null, false);
  }

  on_timer(tag) {
    this.run(() => this.timer(tag), null, false);
  }

  // Runs one event: posts, timers and the state are written only at the end, so a shoe that runs
  // out in the middle of the event can void the hand from the state as it was before the event.
  run(handler, afterVoid, isInit) {
    if (this.g === null && !isInit) {
      return;
    }
    const clockBefore = this.g === null ? null : this.g.clock;
    try {
      handler();
    } catch (error) {
      if (!(error instanceof ShoeEmpty)) {
        throw error;
      }
      this.out = [];
      this.draws = [];
      this.g = this.ctx.get_state();
      this.voidHand();
      if (afterVoid) {
        afterVoid();
      }
    }
    if (this.g === null) {
      return;
    }
    for (const post of this.out) {
      if (post.to) {
        this.ctx.post_to(post.to, post.body);
      } else {
        this.ctx.post(post.body);
      }
    }
    if (this.g.clock !== clockBefore) {
      if (clockBefore) {
        this.ctx.cancel_timer(clockBefore);
      }
      if (this.g.clock) {
        this.ctx.set_timer(this.g.clock_ms, this.g.clock);
      }
    }
    this.ctx.set_state(this.g);
    if (this.endReason !== undefined) {
      this.ctx.end(this.endReason);
    }
  }

  // ---- events ----

  init() {
    const p = this.params;
    const move = intParam(p, "move_timeout_ms", 60000, 1000, 86400000);
    const cfg = {
      chips: intParam(p, "chips", 1000, 1, 1e12),
      min_bet: intParam(p, "min_bet", 10, 1, 1e12),
      max_bet: intParam(p, "max_bet", 500, 1, 1e12),
      decks: intParam(p, "decks", 6, 1, 8),
      hands: intParam(p, "hands", 10, 1, 10000),
      min_players: intParam(p, "min_players", 1, 1, MAX_SEATS),
      move_ms: move,
      bet_ms: intParam(p, "bet_timeout_ms", move, 1000, 86400000),
      entropy_ms: intParam(p, "entropy_timeout_ms", move, 1000, 86400000),
      on_timeout: p.on_timeout === undefined ? "forfeit" : p.on_timeout,
    };
    if (cfg.max_bet < cfg.min_bet) {
      throw new Error(`params.max_bet (${cfg.max_bet}) must be at least params.min_bet (${cfg.min_bet})`);
    }
    if (cfg.on_timeout !== "forfeit" && cfg.on_timeout !== "random_move") {
      throw new Error('params.on_timeout must be "forfeit" or "random_move"');
    }
    this.g = {
      phase: "waiting",
      cfg,
      players: [],
      bank: 0,
      house: 0,
      played: 0,
      hand_no: 0,
      shoes: 0,
      round: null,
      shoe: null,
      dealer: null,
      turn: null,
      clock: null,
      clock_ms: 0,
      tick: 0,
      deadline: null,
    };
    this.say(
      `BlackjackBot: ${cfg.hands} hands, ${cfg.decks}-deck shoe, dealer hits soft 17, blackjack ` +
        `pays 3:2, double on any two cards, split once, no insurance or surrender. Each player ` +
        `starts with ${cfg.chips} chips; bets ${cfg.min_bet}-${cfg.max_bet}. Up to ${MAX_SEATS} ` +
        `players; the first shoe is shuffled once ${cfg.min_players} ` +
        `${cfg.min_players === 1 ? "is" : "are"} seated and everyone has sent me entropy ` +
        `privately. Read my code (get_bot_code) for the full rules and how to check the shoe.`,
      { type: "rules", cfg, max_seats: MAX_SEATS, scheme: SCHEME, shoe_label: SHOE_LABEL },
    );
    for (const player of this.ctx.players()) {
      this.join(player, false);
    }
  }

  join(player, greet) {
    const g = this.g;
    if (g.phase === "over" || !this.isInviteSlot(player.slot)) {
      return;
    }
    let pl = g.players.find((x) => x.slot === player.slot);
    if (pl && !pl.left) {
      pl.name = player.name;
      return;
    }
    if (this.seated().length >= MAX_SEATS) {
      this.tell(player.slot, "TABLE_FULL", `The table is full (${MAX_SEATS} players); you can watch.`);
      return;
    }
    if (pl) {
      pl.name = player.name;
      pl.left = false;
    } else {
      pl = { slot: player.slot, name: player.name, chips: g.cfg.chips, left: false, bet: 0, hands: [] };
      g.players.push(pl);
      g.bank += g.cfg.chips;
    }
    if (greet) {
      this.say(`${pl.name} sits down with ${pl.chips} chips.${this.nowLine(pl)}`, {
        type: "seated",
        slot: pl.slot,
        chips: pl.chips,
        phase: g.phase,
      });
    }
    if (g.phase === "waiting") {
      if (this.seated().length >= g.cfg.min_players) {
        this.openEntropy();
      }
    } else if (g.phase === "entropy" && this.canBet(pl)) {
      if (!g.round.entries.some((e) => e.slot === pl.slot)) {
        g.round.entries.push({ slot: pl.slot, h: null, salt: null, c: null });
      }
    }
  }

  leave(player) {
    const g = this.g;
    if (g.phase === "over") {
      return;
    }
    const pl = g.players.find((x) => x.slot === player.slot);
    if (!pl || pl.left) {
      return;
    }
    pl.left = true;
    // Whatever is at stake goes to the house: the bet, or every hand not settled yet (the house
    // takes a bust hand's stake at settlement, so a bust hand is forfeit here too).
    let lost = pl.bet;
    pl.bet = 0;
    for (const hand of pl.hands) {
      if (hand.st !== "settled" && hand.st !== "forfeit") {
        lost += hand.b;
        hand.st = "forfeit";
      }
    }
    g.house += lost;
    this.say(`${pl.name} left the table${lost > 0 ? `, forfeiting ${lost} chips` : ""}.`, {
      type: "left",
      slot: pl.slot,
      forfeited: lost,
      chips: pl.chips,
    });
    if (g.phase === "waiting") {
      return;
    }
    if (this.seated().length === 0) {
      this.finish("everyone_left", "everyone left");
      return;
    }
    if (g.phase === "entropy") {
      g.round.entries = g.round.entries.filter((e) => e.slot !== pl.slot || e.h !== null);
      this.maybeShuffle();
    } else if (g.phase === "betting") {
      this.maybeDeal();
    } else if (g.phase === "playing" && g.turn && g.players[g.turn.p].slot === pl.slot) {
      this.advance();
      this.postTable(`${pl.name}'s hands are forfeit.`, null);
      this.afterTurns();
    }
  }

  message(msg) {
    const g = this.g;
    if (msg.kind !== "user" || msg.sender === null) {
      return;
    }
    if (msg.private && msg.to !== this.ctx.bot_slot) {
      return;
    }
    const sender = msg.sender;
    if (g.phase === "entropy" && msg.private) {
      const entry = g.round.entries.find((e) => e.slot === sender);
      const data = msg.body.data;
      const fromData = data !== null && typeof data === "object" && typeof data.entropy === "string";
      if (entry && entry.h === null && (fromData || typeof msg.body.text === "string")) {
        this.acceptEntropy(entry, fromData ? data.entropy : msg.body.text);
        return;
      }
    }
    const move = parseMove(msg.body);
    if (move === null) {
      return;
    }
    if (g.phase === "over") {
      return this.violation(sender, "GAME_OVER", "The game is over.");
    }
    const pl = g.players.find((x) => x.slot === sender && !x.left);
    if (move.kind === "entropy" && g.phase === "entropy" && pl) {
      const entry = g.round.entries.find((e) => e.slot === sender);
      if (entry) {
        return this.violation(sender, "BAD_MOVE", entry.h !== null
          ? "I already have your entropy for this shoe; wait for the shuffle."
          : `Send entropy privately: ${this.legalText(pl)}.`);
      }
    }
    if (g.phase === "waiting" || (g.phase === "entropy" && g.shoes === 0)) {
      const what =
        g.phase === "waiting"
          ? `The first shoe opens when ${g.cfg.min_players} player(s) are seated.`
          : "The first shoe is waiting for entropy: each player sends the bot any text privately.";
      return this.violation(sender, "NOT_STARTED", what);
    }
    if (!pl) {
      return this.violation(sender, "BAD_TURN", "You are not seated at this table.");
    }
    if (move.kind === "bad") {
      return this.violation(sender, "BAD_MOVE", `${move.reason} Legal now: ${this.legalText(pl)}.`);
    }
    if (move.kind === "entropy") {
      const entry = g.phase === "entropy" ? g.round.entries.find((e) => e.slot === sender) : null;
      const why = entry ? "I already have your entropy for this shoe." : "I am not collecting entropy from you now.";
      return this.violation(sender, "BAD_MOVE", `${why} Legal now: ${this.legalText(pl)}.`);
    }
    if (g.phase === "entropy") {
      return this.violation(sender, "BAD_MOVE", `Between shoes; legal now: ${this.legalText(pl)}.`);
    }
    if (g.phase === "betting") {
      if (move.kind !== "bet") {
        return this.violation(sender, "BAD_MOVE", `Betting is open; legal now: ${this.legalText(pl)}.`);
      }
      return this.bet(pl, move.amount);
    }
    // playing
    const turnPl = g.turn ? g.players[g.turn.p] : null;
    if (!turnPl || turnPl.slot !== sender) {
      return this.violation(sender, "BAD_TURN",
        turnPl ? `It is ${turnPl.name}'s turn, not yours.` : "Nobody is to act now.");
    }
    if (move.kind === "bet") {
      return this.violation(sender, "BAD_MOVE", `Betting is closed; legal now: ${this.legalText(pl)}.`);
    }
    const legal = this.legal(pl, pl.hands[g.turn.h]);
    if (legal.indexOf(move.action) < 0) {
      return this.violation(sender, "BAD_MOVE",
        `You cannot ${move.action} this hand; legal now: ${legal.join(", ")}.`);
    }
    this.act(pl, move.action, null);
  }

  timer(tag) {
    const g = this.g;
    if (tag !== g.clock) {
      return;
    }
    g.clock = null;
    if (g.phase === "entropy") {
      this.shuffle();
    } else if (g.phase === "betting") {
      if (g.players.some((p) => p.bet > 0)) {
        this.deal();
      } else {
        this.finish("nobody_bet", "nobody bet");
      }
    } else if (g.phase === "playing" && g.turn) {
      const pl = g.players[g.turn.p];
      let action = "stand";
      if (g.cfg.on_timeout === "random_move") {
        const legal = this.legal(pl, pl.hands[g.turn.h]);
        action = legal[this.ctx.random_int(0, legal.length - 1)];
      }
      this.act(pl, action, "timeout");
    }
  }

  // ---- entropy and the shoe ----

  openEntropy() {
    const g = this.g;
    const active = g.players.filter((p) => this.canBet(p));
    if (active.length === 0) {
      this.finish("all_broke", "everyone is broke or gone");
      return;
    }
    const botRandom = this.ctx.random_bytes(32);
    const salt = this.ctx.random_bytes(16);
    const commitment = this.ctx.commit(botRandom, salt);
    g.phase = "entropy";
    g.round = {
      n: g.shoes + 1,
      bot_random: botRandom,
      bot_salt: salt,
      bot_commitment: commitment,
      entries: active.map((p) => ({ slot: p.slot, h: null, salt: null, c: null })),
    };
    this.setClock("entropy", g.cfg.entropy_ms);
    this.say(
      `Shoe ${g.round.n}: before I shuffle, each of ${active.map((p) => p.name).join(", ")} sends ` +
        `me any text privately (to "${this.ctx.bot_slot}"), e.g. "entropy: <anything>", within ` +
        `${seconds(g.cfg.entropy_ms)}. My own random value is committed: ${commitment}. The shoe ` +
        `is shuffled from my value and all of your texts; see my code for the construction.`,
      {
        type: "entropy_round",
        shoe: g.round.n,
        bot_random_commitment: commitment,
        players: active.map((p) => p.slot),
        deadline: g.deadline,
        channel_id: this.ctx.channel_id,
        bot_slot: this.ctx.bot_slot,
      },
    );
  }

  acceptEntropy(entry, text) {
    const g = this.g;
    entry.h = this.ctx.sha256(text);
    entry.salt = this.ctx.random_bytes(16);
    entry.c = this.ctx.commit(text, entry.salt);
    const waiting = g.round.entries.filter((e) => e.h === null).map((e) => e.slot);
    this.say(
      `Entropy from ${this.nameOf(entry.slot)} received, commitment ${entry.c}.` +
        (waiting.length ? ` Waiting for ${waiting.map((s) => this.nameOf(s)).join(", ")}.` : ""),
      { type: "entropy_received", slot: entry.slot, commitment: entry.c, waiting },
    );
    this.maybeShuffle();
  }

  maybeShuffle() {
    const g = this.g;
    if (g.round.entries.length > 0 && g.round.entries.every((e) => e.h !== null)) {
      this.shuffle();
    } else if (!g.players.some((p) => this.canBet(p))) {
      this.finish("all_broke", "everyone is broke or gone");
    }
  }

  shuffle() {
    const g = this.g;
    const r = g.round;
    const empty = this.ctx.sha256("");
    const entries = r.entries.map((e) => ({
      slot: e.slot,
      h: e.h === null ? empty : e.h,
      salt: e.salt,
      c: e.c,
      missing: e.h === null,
    }));
    let keyInput = `${SHOE_LABEL}|${g.cfg.decks}|${r.bot_random}`;
    for (const e of entries) {
      keyInput += `|${e.h}`;
    }
    const key = this.ctx.sha256(keyInput);
    const order = shuffleShoe(this.ctx, key, g.cfg.decks);
    const salt = this.ctx.random_bytes(16);
    const commitment = this.ctx.commit(order, salt);
    g.shoes = r.n;
    g.shoe = {
      n: r.n,
      order,
      pos: 0,
      salt,
      commitment,
      key,
      bot_random: r.bot_random,
      bot_salt: r.bot_salt,
      bot_commitment: r.bot_commitment,
      entries,
    };
    g.round = null;
    const missing = entries.filter((e) => e.missing).map((e) => this.nameOf(e.slot));
    this.say(
      `Shoe ${r.n} shuffled (${g.cfg.decks} decks, ${order.length / 2} cards) from my committed ` +
        `value and the entropy of ${entries.map((e) => this.nameOf(e.slot)).join(", ")}` +
        (missing.length ? ` (no entropy from ${missing.join(", ")}: the empty string)` : "") +
        `. Commitment to the order: ${commitment}. I reveal it when the shoe ends.`,
      {
        type: "shuffle",
        shoe: r.n,
        decks: g.cfg.decks,
        cards: order.length / 2,
        commitment,
        bot_random_commitment: r.bot_commitment,
        entries: entries.map((e) => ({ slot: e.slot, commitment: e.c, missing: e.missing })),
      },
    );
    this.openBetting();
  }

  revealShoe() {
    const g = this.g;
    const s = g.shoe;
    if (!s) {
      return;
    }
    this.say(
      `Shoe ${s.n} reveal: ${s.pos} of ${s.order.length / 2} cards dealt. Order: ${s.order}. ` +
        `Salt ${s.salt} (commitment ${s.commitment}). My random value ${s.bot_random} (salt ` +
        `${s.bot_salt}, commitment ${s.bot_commitment}). Entropy hashes: ` +
        s.entries.map((e) => `${this.nameOf(e.slot)} ${e.h}${e.missing ? " (none sent)" : ""}`).join(", ") +
        `. Key ${s.key}. Recompute: see the shoe section of my code.`,
      {
        type: "shoe_reveal",
        shoe: s.n,
        scheme: SCHEME,
        shoe_label: SHOE_LABEL,
        channel_id: this.ctx.channel_id,
        bot_slot: this.ctx.bot_slot,
        decks: g.cfg.decks,
        order: s.order,
        salt: s.salt,
        commitment: s.commitment,
        dealt: s.pos,
        bot_random: s.bot_random,
        bot_random_salt: s.bot_salt,
        bot_random_commitment: s.bot_commitment,
        entries: s.entries.map((e) => ({
          slot: e.slot,
          entropy_sha256: e.h,
          missing: e.missing,
          salt: e.salt,
          commitment: e.c,
        })),
        shoe_key: s.key,
      },
    );
    g.shoe = null;
  }

  draw(to, hidden) {
    const s = this.g.shoe;
    if (s.pos * 2 >= s.order.length) {
      throw new ShoeEmpty("the shoe ran out");
    }
    const card = s.order.substr(s.pos * 2, 2);
    this.draws.push({ pos: s.pos, to, card: hidden ? null : card });
    s.pos += 1;
    return card;
  }

  // ---- betting and play ----

  openBetting() {
    const g = this.g;
    if (!g.players.some((p) => this.canBet(p))) {
      this.finish("all_broke", "everyone is broke or gone");
      return;
    }
    g.phase = "betting";
    g.hand_no = g.played + 1;
    g.dealer = null;
    g.turn = null;
    for (const p of g.players) {
      p.bet = 0;
      p.hands = [];
    }
    this.setClock("bet", g.cfg.bet_ms);
    const who = g.players.filter((p) => this.canBet(p));
    this.say(
      `Hand ${g.hand_no} of ${g.cfg.hands}: place your bets ("bet ${g.cfg.min_bet}" up to ` +
        `${g.cfg.max_bet}) within ${seconds(g.cfg.bet_ms)}. Chips: ` +
        who.map((p) => `${p.name} ${p.chips}`).join(", ") + ".",
      {
        type: "betting",
        hand: g.hand_no,
        min_bet: g.cfg.min_bet,
        max_bet: g.cfg.max_bet,
        players: who.map((p) => p.slot),
        chips: this.chips(),
        deadline: g.deadline,
      },
    );
  }

  bet(pl, amount) {
    const g = this.g;
    if (pl.bet > 0) {
      return this.violation(pl.slot, "BAD_MOVE", `You already bet ${pl.bet} on this hand.`);
    }
    if (!this.canBet(pl)) {
      return this.violation(pl.slot, "BAD_MOVE",
        `You have ${pl.chips} chips, less than the minimum bet of ${g.cfg.min_bet}.`);
    }
    const top = Math.min(g.cfg.max_bet, pl.chips);
    if (!Number.isSafeInteger(amount) || amount < g.cfg.min_bet || amount > top) {
      return this.violation(pl.slot, "BAD_MOVE",
        `A bet is a whole number from ${g.cfg.min_bet} to ${top}.`);
    }
    pl.chips -= amount;
    pl.bet = amount;
    const waiting = g.players.filter((p) => this.canBet(p) && p.bet === 0);
    this.say(
      `${pl.name} bets ${amount}.` +
        (waiting.length ? ` Waiting for ${waiting.map((p) => p.name).join(", ")}.` : ""),
      { type: "bet", slot: pl.slot, amount, chips: pl.chips, waiting: waiting.map((p) => p.slot) },
    );
    this.maybeDeal();
  }

  maybeDeal() {
    const g = this.g;
    const waiting = g.players.some((p) => this.canBet(p) && p.bet === 0);
    if (!waiting) {
      if (g.players.some((p) => p.bet > 0)) {
        this.deal();
      } else {
        this.finish("all_broke", "everyone is broke or gone");
      }
    }
  }

  deal() {
    const g = this.g;
    g.phase = "playing";
    g.clock = null;
    const seats = g.players.filter((p) => p.bet > 0 && !p.left);
    for (const p of seats) {
      p.hands = [{ c: "", b: p.bet, st: "play", split: false, dbl: false }];
      p.bet = 0;
    }
    g.dealer = { c: "", hole_salt: null, hole_c: null, hole_pos: null, shown: false };
    for (const p of seats) {
      p.hands[0].c += this.draw(p.slot, false);
    }
    g.dealer.c += this.draw("dealer", false);
    for (const p of seats) {
      p.hands[0].c += this.draw(p.slot, false);
    }
    g.dealer.hole_pos = g.shoe.pos;
    const hole = this.draw("dealer", true);
    g.dealer.c += hole;
    g.dealer.hole_salt = this.ctx.random_bytes(16);
    g.dealer.hole_c = this.ctx.commit(hole, g.dealer.hole_salt);
    for (const p of seats) {
      if (isBlackjack(p.hands[0])) {
        p.hands[0].st = "blackjack";
      }
    }
    const up = g.dealer.c[0];
    if ((up === "A" || cardValue(up) === 10) && total(g.dealer.c).t === 21) {
      g.turn = null;
      this.postTable("Dealer peeks: blackjack.", null);
      this.settle(true);
      return;
    }
    g.turn = { p: -1, h: 0 };
    this.advance();
    const peek = up === "A" || cardValue(up) === 10 ? " Dealer peeked: no blackjack." : "";
    this.postTable(`Hand ${g.hand_no} dealt.${peek}`, null);
    this.afterTurns();
  }

  legal(pl, hand) {
    const out = ["hit", "stand"];
    if (hand.c.length === 4 && pl.chips >= hand.b && !(hand.split && hand.c[0] === "A")) {
      out.push("double");
    }
    if (hand.c.length === 4 && pl.hands.length === 1 && hand.c[0] === hand.c[2] && pl.chips >= hand.b) {
      out.push("split");
    }
    return out;
  }

  act(pl, action, why) {
    const g = this.g;
    const handIndex = g.turn.h;
    const hand = pl.hands[handIndex];
    if (action === "hit") {
      hand.c += this.draw(pl.slot, false);
      settleHandStatus(hand);
    } else if (action === "stand") {
      hand.st = "stand";
    } else if (action === "double") {
      pl.chips -= hand.b;
      hand.b *= 2;
      hand.dbl = true;
      hand.c += this.draw(pl.slot, false);
      hand.st = total(hand.c).t > 21 ? "bust" : "stand";
    } else if (action === "split") {
      pl.chips -= hand.b;
      const second = { c: hand.c.substr(2, 2), b: hand.b, st: "play", split: true, dbl: false };
      hand.c = hand.c.substr(0, 2);
      hand.split = true;
      pl.hands.push(second);
      hand.c += this.draw(pl.slot, false);
      second.c += this.draw(pl.slot, false);
      for (const h of pl.hands) {
        if (h.c[0] === "A") {
          h.st = "stand";
        } else {
          settleHandStatus(h);
        }
      }
    }
    if (hand.st !== "play") {
      this.advance();
    } else {
      this.setTurnClock();
    }
    const tot = total(hand.c);
    const verb = { hit: "hits", stand: "stands", double: "doubles", split: "splits" }[action];
    const label = pl.hands.length > 1 ? ` (hand ${handIndex + 1})` : "";
    const head =
      `${pl.name}${label} ${verb}${why ? " (turn timed out)" : ""}: ` +
      (action === "split"
        ? pl.hands.map((h) => `${showCards(h.c)} = ${showTotal(h.c)}`).join(" and ")
        : `${showCards(hand.c)} = ${showTotal(hand.c)}${tot.t > 21 ? ", bust" : ""}`) +
      ".";
    this.postTable(head, { slot: pl.slot, hand: handIndex, action, timeout: why !== null });
    this.afterTurns();
  }

  // Moves the turn to the next hand still in play, after the current one (g.turn.p -1 = start).
  advance() {
    const g = this.g;
    let p = g.turn ? g.turn.p : -1;
    let h = g.turn ? g.turn.h + 1 : 0;
    if (p < 0) {
      p = 0;
      h = 0;
    }
    for (; p < g.players.length; p++, h = 0) {
      const pl = g.players[p];
      if (pl.left) {
        continue;
      }
      for (; h < pl.hands.length; h++) {
        if (pl.hands[h].st === "play") {
          g.turn = { p, h };
          this.setTurnClock();
          return;
        }
      }
    }
    g.turn = null;
    g.clock = null;
    g.deadline = null;
  }

  setTurnClock() {
    this.setClock("turn", this.g.cfg.move_ms);
  }

  afterTurns() {
    if (this.g.phase === "playing" && this.g.turn === null) {
      this.dealerPlay();
      this.settle(false);
    }
  }

  dealerPlay() {
    const g = this.g;
    const live = g.players.some((p) => !p.left && p.hands.some((h) => h.st === "stand"));
    if (!live) {
      return;
    }
    for (;;) {
      const t = total(g.dealer.c);
      if (t.t < 17 || (t.t === 17 && t.soft)) {
        g.dealer.c += this.draw("dealer", false);
      } else {
        return;
      }
    }
  }

  settle(dealerBlackjack) {
    const g = this.g;
    const d = total(g.dealer.c);
    const dealerBust = d.t > 21;
    const results = [];
    const lines = [];
    for (const pl of g.players) {
      pl.hands.forEach((hand, index) => {
        if (hand.st === "forfeit") {
          return;
        }
        const t = total(hand.c).t;
        let outcome;
        let back = 0;
        if (hand.st === "bust") {
          outcome = "bust";
        } else if (hand.st === "blackjack") {
          outcome = dealerBlackjack ? "push" : "blackjack";
          back = dealerBlackjack ? hand.b : hand.b + Math.floor((hand.b * 3) / 2);
        } else if (dealerBlackjack) {
          outcome = "lose";
        } else if (dealerBust || t > d.t) {
          outcome = "win";
          back = hand.b * 2;
        } else if (t === d.t) {
          outcome = "push";
          back = hand.b;
        } else {
          outcome = "lose";
        }
        pl.chips += back;
        g.house += hand.b - back;
        hand.st = "settled";
        results.push({ slot: pl.slot, hand: index, cards: splitCards(hand.c), total: t, bet: hand.b, outcome, net: back - hand.b });
        const label = pl.hands.length > 1 ? ` (hand ${index + 1})` : "";
        const net = back - hand.b;
        lines.push(`${pl.name}${label}: ${showCards(hand.c)} = ${t}, ${outcome} ${net >= 0 ? "+" : ""}${net}`);
      });
    }
    g.dealer.shown = true;
    g.played += 1;
    const hole = this.holeReveal();
    this.say(
      `Hand ${g.hand_no} result. Dealer: ${showCards(g.dealer.c)} = ${d.t}` +
        `${dealerBlackjack ? " (blackjack)" : dealerBust ? " (bust)" : ""}; hole card ` +
        `${showCard(g.dealer.c.substr(2, 2))}, salt ${hole.salt}. ` +
        (lines.length ? lines.join("; ") : "no hands") +
        `. Chips: ${g.players.map((p) => `${p.name} ${p.chips}`).join(", ")}.`,
      {
        type: "result",
        hand: g.hand_no,
        dealer: { cards: splitCards(g.dealer.c), total: d.t, blackjack: dealerBlackjack, bust: dealerBust },
        hole,
        results,
        chips: this.chips(),
        house: g.house,
        draws: this.takeDraws(),
      },
    );
    g.turn = null;
    this.betweenHands();
  }

  holeReveal() {
    const d = this.g.dealer;
    return {
      card: d.c.substr(2, 2),
      pos: d.hole_pos,
      salt: d.hole_salt,
      commitment: d.hole_c,
      scheme: SCHEME,
      channel_id: this.ctx.channel_id,
      bot_slot: this.ctx.bot_slot,
    };
  }

  betweenHands() {
    const g = this.g;
    for (const p of g.players) {
      p.hands = [];
    }
    if (g.played >= g.cfg.hands) {
      this.finish("hands_played", `all ${g.cfg.hands} hands played`);
      return;
    }
    const active = g.players.filter((p) => this.canBet(p)).length;
    if (active === 0) {
      this.finish("all_broke", "everyone is broke or gone");
      return;
    }
    const s = g.shoe;
    const cards = s.order.length / 2;
    if (cards - s.pos < Math.max(Math.ceil(cards / 4), 6 * (active + 1))) {
      this.revealShoe();
      this.openEntropy();
    } else {
      this.openBetting();
    }
  }

  // The shoe ran out mid-hand: g is the state before this event. Every stake goes back.
  voidHand() {
    const g = this.g;
    let hole = null;
    for (const p of g.players) {
      let back = p.bet;
      for (const hand of p.hands) {
        if (hand.st !== "forfeit") {
          back += hand.b;
        }
      }
      p.chips += back;
      p.bet = 0;
      p.hands = [];
    }
    if (g.dealer && g.dealer.hole_c) {
      hole = this.holeReveal();
    }
    g.dealer = null;
    g.turn = null;
    g.clock = null;
    g.deadline = null;
    this.say(
      `The shoe ran out in the middle of hand ${g.hand_no}: the hand is void and every stake goes ` +
        `back. Chips: ${g.players.map((p) => `${p.name} ${p.chips}`).join(", ")}.`,
      { type: "void", hand: g.hand_no, hole, chips: this.chips(), house: g.house },
    );
    this.revealShoe();
    this.openEntropy();
  }

  finish(reason, why) {
    const g = this.g;
    let hole = null;
    if (g.phase === "playing" && g.dealer && !g.dealer.shown && g.dealer.hole_c) {
      hole = this.holeReveal();
    }
    for (const p of g.players) {
      // Stakes of a hand cut short (the last player left) are already forfeit to the house.
      p.bet = 0;
      p.hands = [];
    }
    g.phase = "over";
    g.turn = null;
    g.clock = null;
    g.deadline = null;
    const standings = g.players
      .slice()
      .sort((a, b) => b.chips - a.chips)
      .map((p) => ({ slot: p.slot, name: p.name, chips: p.chips, net: p.chips - g.cfg.chips, left: p.left }));
    this.say(
      `Game over (${why}) after ${g.played} hand(s). Standings: ` +
        (standings.length
          ? standings.map((s) => `${s.name} ${s.chips} (${s.net >= 0 ? "+" : ""}${s.net})${s.left ? ", left" : ""}`).join("; ")
          : "nobody played") +
        `. House ${g.house >= 0 ? "+" : ""}${g.house}.`,
      { type: "final", reason, hands_played: g.played, standings, house: g.house, hole, draws: this.takeDraws() },
    );
    this.revealShoe();
    if (g.round) {
      const r = g.round;
      this.say(`Unused entropy round ${r.n}: my random value was ${r.bot_random}, salt ${r.bot_salt}.`, {
        type: "round_reveal",
        shoe: r.n,
        bot_random: r.bot_random,
        bot_random_salt: r.bot_salt,
        bot_random_commitment: r.bot_commitment,
      });
      g.round = null;
    }
    this.endReason = `Game over: ${why}`.slice(0, 190);
  }

  // ---- output ----

  postTable(head, action) {
    const g = this.g;
    const turnPl = g.turn ? g.players[g.turn.p] : null;
    const up = g.dealer.c.substr(0, 2);
    const lines = [head, `Dealer: ${showCard(up)} [hole card, commitment ${g.dealer.hole_c}]`];
    const hands = [];
    for (const pl of g.players) {
      pl.hands.forEach((hand, index) => {
        const t = total(hand.c);
        const label = pl.hands.length > 1 ? ` hand ${index + 1}` : "";
        const mark = g.turn && turnPl === pl && g.turn.h === index ? " <- to act" : "";
        lines.push(`${pl.name}${label} (bet ${hand.b}): ${showCards(hand.c)} = ${showTotal(hand.c)}, ${hand.st}${mark}`);
        hands.push({ slot: pl.slot, hand: index, cards: splitCards(hand.c), total: t.t, soft: t.soft, bet: hand.b, status: hand.st });
      });
    }
    let turn = null;
    if (turnPl) {
      const legal = this.legal(turnPl, turnPl.hands[g.turn.h]);
      turn = { slot: turnPl.slot, hand: g.turn.h, legal };
      lines.push(`${turnPl.name}, your turn: ${legal.join(", ")} (${seconds(g.cfg.move_ms)}).`);
    } else {
      lines.push("Dealer's turn.");
    }
    this.say(lines.join("\n"), {
      type: "table",
      hand: g.hand_no,
      action,
      hands,
      dealer: { up, hole_commitment: g.dealer.hole_c },
      turn,
      deadline: turnPl ? g.deadline : null,
      chips: this.chips(),
      draws: this.takeDraws(),
    });
  }

  setClock(kind, ms) {
    const g = this.g;
    g.tick += 1;
    g.clock = `${kind}-${g.tick}`;
    g.clock_ms = ms;
    g.deadline = this.ctx.now() + ms;
  }

  takeDraws() {
    const draws = this.draws;
    this.draws = [];
    return draws;
  }

  chips() {
    const out = {};
    for (const p of this.g.players) {
      out[p.slot] = p.chips;
    }
    return out;
  }

  say(text, data) {
    this.out.push({ to: null, body: { text, data } });
  }

  tell(slot, code, message) {
    this.out.push({ to: slot, body: { text: `${code}: ${message}`, data: { type: "notice", code, message } } });
  }

  violation(slot, code, message) {
    this.out.push({ to: slot, body: { text: `${code}: ${message}`, data: { type: "violation", code, message } } });
  }

  legalText(pl) {
    const g = this.g;
    if (g.phase === "entropy") {
      const entry = g.round.entries.find((e) => e.slot === pl.slot);
      return entry && entry.h === null
        ? `send the bot any text privately (to "${this.ctx.bot_slot}") as entropy`
        : "wait for the shuffle";
    }
    if (g.phase === "betting") {
      if (pl.bet > 0 || !this.canBet(pl)) {
        return "wait for the deal";
      }
      return `"bet N" with N from ${g.cfg.min_bet} to ${Math.min(g.cfg.max_bet, pl.chips)}`;
    }
    if (g.phase === "playing" && g.turn && g.players[g.turn.p] === pl) {
      return this.legal(pl, pl.hands[g.turn.h]).join(", ");
    }
    return "wait for your turn";
  }

  nowLine(pl) {
    const g = this.g;
    if (g.phase === "betting" && this.canBet(pl)) {
      return " Betting is open: bet now.";
    }
    if (g.phase === "playing") {
      return " You play from the next hand.";
    }
    return "";
  }

  seated() {
    return this.g.players.filter((p) => !p.left);
  }

  canBet(pl) {
    return !pl.left && pl.chips >= this.g.cfg.min_bet;
  }

  nameOf(slot) {
    const pl = this.g.players.find((p) => p.slot === slot);
    return pl ? pl.name : slot;
  }

  isInviteSlot(slot) {
    return this.ctx.slots().some((s) => s.slot === slot && s.kind === "invite");
  }
}

// ---- helpers ----

function intParam(params, name, fallback, lo, hi) {
  const value = params[name];
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isSafeInteger(value) || value < lo || value > hi) {
    throw new Error(`params.${name} must be an integer from ${lo} to ${hi}`);
  }
  return value;
}

function seconds(ms) {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

// The shoe order for `key` (see the header): Fisher-Yates over the sha256 block stream.
function shuffleShoe(ctx, key, decks) {
  const cards = [];
  for (let d = 0; d < decks; d++) {
    for (const s of SUITS) {
      for (const r of RANKS) {
        cards.push(r + s);
      }
    }
  }
  let block = "";
  let offset = 0;
  let k = 0;
  const next32 = () => {
    if (offset >= block.length) {
      block = ctx.sha256(`${key}:${k}`);
      k += 1;
      offset = 0;
    }
    const x = parseInt(block.substr(offset, 8), 16);
    offset += 8;
    return x;
  };
  const TWO32 = 4294967296;
  for (let i = cards.length - 1; i > 0; i--) {
    const m = i + 1;
    const limit = TWO32 - (TWO32 % m);
    let x = next32();
    while (x >= limit) {
      x = next32();
    }
    const j = x % m;
    const t = cards[i];
    cards[i] = cards[j];
    cards[j] = t;
  }
  return cards.join("");
}

function cardValue(rank) {
  if (rank === "A") {
    return 1;
  }
  if (rank === "T" || rank === "J" || rank === "Q" || rank === "K") {
    return 10;
  }
  return Number(rank);
}

// {t, soft} of a string of card codes: aces count 11 when that does not bust (soft).
function total(cards) {
  let sum = 0;
  let ace = false;
  for (let i = 0; i < cards.length; i += 2) {
    const v = cardValue(cards[i]);
    sum += v;
    if (v === 1) {
      ace = true;
    }
  }
  if (ace && sum + 10 <= 21) {
    return { t: sum + 10, soft: true };
  }
  return { t: sum, soft: false };
}

function isBlackjack(hand) {
  return !hand.split && hand.c.length === 4 && total(hand.c).t === 21;
}

// After a card: bust over 21, stands by itself at 21, else still in play.
function settleHandStatus(hand) {
  const t = total(hand.c).t;
  if (t > 21) {
    hand.st = "bust";
  } else if (t === 21) {
    hand.st = "stand";
  }
}

function splitCards(cards) {
  const out = [];
  for (let i = 0; i < cards.length; i += 2) {
    out.push(cards.substr(i, 2));
  }
  return out;
}

function showCard(code) {
  return (code[0] === "T" ? "10" : code[0]) + SYMBOLS[code[1]];
}

function showCards(cards) {
  return splitCards(cards).map(showCard).join(" ");
}

function showTotal(cards) {
  const t = total(cards);
  return t.soft ? `soft ${t.t}` : `${t.t}`;
}

// A move from a message body, or null when the message is chat.
function parseMove(body) {
  const data = body.data;
  if (data !== null && typeof data === "object") {
    if ("entropy" in data) {
      return { kind: "entropy" };
    }
    if ("bet" in data) {
      return Number.isSafeInteger(data.bet)
        ? { kind: "bet", amount: data.bet }
        : { kind: "bad", reason: 'A bet is a whole number, e.g. {"bet": 50}.' };
    }
    if ("action" in data) {
      return ACTIONS.indexOf(data.action) >= 0
        ? { kind: "action", action: data.action }
        : { kind: "bad", reason: 'Actions are {"action": "hit"}, "stand", "double" and "split".' };
    }
  }
  if (typeof body.text !== "string") {
    return null;
  }
  const text = body.text.trim().toLowerCase();
  if (ACTIONS.indexOf(text) >= 0) {
    return { kind: "action", action: text };
  }
  if (/^entropy\b/.test(text)) {
    return { kind: "entropy" };
  }
  const bet = /^bet\b\s*:?\s*(.*)$/.exec(text);
  if (bet) {
    if (/^\d+$/.test(bet[1]) && Number.isSafeInteger(Number(bet[1]))) {
      return { kind: "bet", amount: Number(bet[1]) };
    }
    return { kind: "bad", reason: 'Write a bet as "bet 50".' };
  }
  return null;
}
