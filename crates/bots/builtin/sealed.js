// SealedExchangeBot: a question fixed at the start, answered privately by N participants; every
// answer is sealed with a public commitment as it arrives, and all are revealed together only
// once every answer is in. Anyone may withdraw before that, and then nothing is revealed. With
// mode "auction" the answers are bids and the bot runs a sealed-bid auction (first or second
// price).
//
// Params:
// - question (required): the question, a non-empty string of at most 2000 bytes of UTF-8. It is
//   public from the start: the opening post shows it with its SHA-256.
// - participants: how many answer, an integer from 2 to 10 (default 2).
// - mode: "exchange" (default: answers are free text) or "auction" (answers are bids).
// - min_bid, max_bid (auction only): the bids allowed, whole numbers (default 0 and
//   1000000000000, at most 2^53-1, min_bid <= max_bid).
// - price (auction only): "first" (default: the winner pays their bid) or "second" (Vickrey: the
//   winner pays the second-highest bid, or their own when no other bid exists).
// - answer_timeout_ms (optional): the time everyone has to answer, in ms from when the bot is
//   attached (integer, 1000 to 86400000). When it runs out before every answer is in, the
//   exchange is called off and nothing is revealed. Without it there is no clock.
// - allow_reveal_after_end (optional, default false): see "The channel's reveal_private setting".
//
// The channel's reveal_private setting: when it is true (create_channel's default), the server
// shows every private message sent to a bot in each participant's transcript export once the
// bot's run ends, so a called-off exchange's answers would become readable after all. The bot
// therefore refuses to start (on_init throws) in such a channel: create it with
// reveal_private false. With allow_reveal_after_end true it starts anyway, and its opening post
// warns that every answer becomes readable in the export once the run ends, even when the
// exchange is called off.
//
// Rules, step by step:
// 1. On attach the bot posts the question, its hash and the rules. The participants are the
//    first N participants to take invite (player) seats, in the order they sat down (those
//    already seated when the bot is attached count in seat order). Spectators and later arrivals
//    watch. Each new participant is announced.
// 2. An answer is a PRIVATE message to the bot (to: the bot's slot). In an exchange: data
//    {"answer": "..."} or the message's text, with leading and trailing whitespace dropped, not
//    empty, of at most max_answer_bytes bytes counted in its JSON form (a quote, backslash, line
//    break or tab counts 2, another control character 6): 4000, or 12000/N when that is less, so
//    that the reveal fits in one post. In an auction: a whole number from min_bid to max_bid, as
//    text ("250", "bid 250") or data {"bid": 250} (or {"answer": 250}; the number may be a
//    string of digits). To answer "withdraw" itself, use data {"answer": "withdraw"}.
// 3. Optionally, data may add {"nonce": "..."} (1 to 256 bytes): the bot mixes it into the
//    answer's salt. See "What it does not prove" for why a short answer wants one.
// 4. Answers are taken from seated participants at once, before all N are seated. For each, the
//    bot draws a 16-byte salt (ctx.random_bytes; with a nonce, the first 16 bytes of
//    SHA-256(hex salt + ":" + nonce)), commits to the answer (ctx.commit, below), tells the
//    sender privately what it sealed, and posts the commitment publicly, never the answer.
// 5. When the N-th answer arrives, the bot posts every answer with its salt and commitment,
//    in the order they were sealed (and in an auction the winner and the price), and ends its
//    run (ctx.end): the server reveals its seed, and later messages are no longer its events.
// 6. Until then, any participant may withdraw: text "withdraw" (public or private; a final "."
//    or "!" is fine) or data {"action": "withdraw"}. A participant who leaves the channel withdraws too, and so does the
//    clock running out (answer_timeout_ms). The bot then posts that the exchange is called off,
//    with no answer, salt or anything derived from one, and ends its run. Races are decided by
//    channel order: a withdrawal that comes after the last answer is too late, the reveal stands.
// 7. Auction: the highest bid wins; equal bids are ranked by who sealed first. The price is the
//    winner's bid ("first") or the second-highest bid ("second"; the winner's own when alone).
//
// The commitment to an answer (docs/bot-api.md):
//   commitment = "sha256:" + hex(SHA-256(lp("mcp-multiplayer/commit/v1") || lp(channel_id) ||
//                lp(bot_slot) || lp(answer) || lp(salt)))
//   lp(x) = 8-byte big-endian length of x || x   (strings as UTF-8, the salt as raw bytes)
// where answer is the string sealed (an auction's bid in decimal digits, "250") and salt is the
// revealed hex decoded to 16 bytes. question_hash is "sha256:" + hex(SHA-256(question as UTF-8)).
//
// Violations go privately to whoever made them and change nothing: BAD_TURN (you are not one of
// the participants), BAD_MOVE (an answer posted publicly: everyone has seen it, so it does not
// count, send it privately; or an answer that is empty, too long, not a whole number in range,
// or an unknown action), ALREADY_ANSWERED (you have answered; the first answer stands and
// cannot be changed), GAME_OVER (the exchange is over; the server stops delivering events once
// the bot's run ends, so this answers only what still reaches it). What counts as an attempt:
// any private message to the bot; publicly, data with an "answer" (or, in an auction, "bid") or
// "action" key, the text "withdraw", and in an auction text shaped like a bid ("250", "bid 9").
// Other public text is chat and is ignored, as are private messages to others.
//
// Posts (every one with data):
// - {type: "rules", question, question_hash, mode, participants (N), seated: [slot], waiting:
//   [slot], open_seats, max_answer_bytes (exchange) | min_bid, max_bid, price (auction),
//   answer_timeout_ms, deadline (ms since the epoch, or null), reveal_private (the channel's
//   setting; null if the server does not say), scheme}: the opening post.
// - {type: "participant", slot, seated: [slot], waiting: [slot], open_seats}: a participant
//   took one of the N places after the bot was attached.
// - to the sender only: {type: "your_answer", answer, salt, commitment, order}.
// - {type: "sealed", slot, commitment, order (1 for the first answer sealed), waiting: [slot]
//   (seated participants yet to answer), open_seats (places not yet taken), deadline}.
// - {type: "reveal", question_hash, mode, scheme, channel_id, bot_slot, answers: [{slot,
//   answer, salt, commitment}] in the order sealed}, and in an auction also winner (slot),
//   price (number), price_rule ("first" | "second") and bids: [{slot, bid}], highest first.
// - {type: "called_off", reason: "withdrawn" | "left" | "timeout", by (slot, or null on a
//   timeout), answered: [slot], missing: [slot], open_seats}: nothing was revealed.
// - to the offender only: {type: "violation", code, message}.
//
// What it proves: each answer was fixed when its commitment was posted, before any answer was
// shown, and the reveal opens every commitment (anyone can recompute them); no answer is shown
// unless all N are in; the order of answers and withdrawals is the channel's, signed in its
// hash chain. The question is in the params (their hash is in the channel) and its hash is in
// the opening post and the reveal. The bot's code is public, and once its seed is revealed
// anyone holding every input (the operator's export) can replay its run.
// What it does not prove, and whom you trust:
// - The server and its operator read every private message as it arrives (the bot runs there):
//   answers are sealed from the other participants, not from the server. A dishonest server
//   could show one participant another's answer early; the chain proves the order of
//   messages, not who read what.
// - After the run ends (reveal or called off), the server reveals the bot's seed, and the salts
//   are derived from it and the seq of each answer's message, both public then. An answer from
//   a small set (yes or no, a bid) can then be found from its commitment by trying every
//   candidate: a called-off exchange hides it only if the answer is hard to guess, or if it came
//   with a nonce (rule 3) that nobody else knows.
// - With reveal_private true (only with allow_reveal_after_end) the answers become readable in
//   every participant's export once the run ends, even when the exchange is called off.
// - Who answered, when, and in which order is public; how long each answer is is not.
// - A participant sees the others' answers only at the reveal, when their own is sealed; but
//   nothing stops participants from agreeing on answers outside the channel.

const SCHEME = "mcp-multiplayer/commit/v1";
const TIMER = "answers";
const PARAMS = [
  "question", "participants", "mode", "min_bid", "max_bid", "price", "answer_timeout_ms",
  "allow_reveal_after_end",
];
const AUCTION_PARAMS = ["min_bid", "max_bid", "price"];
const MAX_QUESTION_BYTES = 2000;
const MAX_ANSWER_BYTES = 4000;
// What all answers may take in the reveal, in their JSON form: the reveal post's data must stay
// under the 16 KiB cap with the salts, commitments and slots beside them.
const ANSWERS_BUDGET = 12000;
const MAX_NONCE_BYTES = 256;

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params === null || params === undefined ? {} : params;
    this.st = ctx.get_state();
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
    const question = params.question;
    if (typeof question !== "string" || question.trim() === "") {
      throw new Error("params.question is required: the question everyone answers, a non-empty string");
    }
    if (utf8Bytes(question) > MAX_QUESTION_BYTES) {
      throw new Error(`params.question is too long: at most ${MAX_QUESTION_BYTES} bytes of UTF-8`);
    }
    const n = integerParam(params, "participants", 2, 2, 10);
    const mode = choiceParam(params, "mode", ["exchange", "auction"]);
    if (mode !== "auction") {
      for (const key of AUCTION_PARAMS) {
        if (params[key] !== undefined) {
          throw new Error(`params.${key} applies to mode "auction" only`);
        }
      }
    }
    const minBid = integerParam(params, "min_bid", 0, 0, Number.MAX_SAFE_INTEGER);
    const maxBid = integerParam(params, "max_bid", 1e12, 0, Number.MAX_SAFE_INTEGER);
    if (minBid > maxBid) {
      throw new Error(`params.min_bid (${minBid}) must not be above params.max_bid (${maxBid})`);
    }
    const price = choiceParam(params, "price", ["first", "second"]);
    const timeout = integerParam(params, "answer_timeout_ms", null, 1000, 86400000);
    const allow = params.allow_reveal_after_end === undefined ? false : params.allow_reveal_after_end;
    if (typeof allow !== "boolean") {
      throw new Error("params.allow_reveal_after_end must be true or false");
    }
    const revealPrivate = this.ctx.reveal_private;
    if (revealPrivate !== false && !allow) {
      throw new Error(
        revealPrivate === true
          ? "this channel has reveal_private true: every private answer would become readable " +
            "in the transcript export once the bot's run ends, even if the exchange is called " +
            "off. Create the channel with reveal_private false so that withdrawn answers stay " +
            "sealed, or pass params.allow_reveal_after_end true to accept that"
          : "this server does not tell bots its reveal_private setting (ctx.reveal_private), so " +
            "the bot cannot promise that withdrawn answers stay sealed; pass " +
            "params.allow_reveal_after_end true to accept that they may become readable"
      );
    }
    const invites = this.ctx.slots().filter((s) => s.kind === "invite").length;
    if (invites < n) {
      throw new Error(
        `params.participants is ${n} but the channel has only ${invites} player (invite) ` +
        `slot${invites === 1 ? "" : "s"}`
      );
    }
    const st = {
      phase: "open",
      mode,
      question,
      question_hash: "sha256:" + this.ctx.sha256(question),
      n,
      max_answer_bytes: Math.min(MAX_ANSWER_BYTES, Math.floor(ANSWERS_BUDGET / n)),
      min_bid: minBid,
      max_bid: maxBid,
      price,
      timeout_ms: timeout,
      deadline: timeout === null ? null : this.ctx.now() + timeout,
      // true, false, or null when the server does not say (then the bot warns as for true).
      reveal_private: typeof revealPrivate === "boolean" ? revealPrivate : null,
      participants: [],
      answers: [],
    };
    this.st = st;
    for (const player of this.ctx.players()) {
      this.addParticipant(player);
    }
    if (timeout !== null) {
      this.ctx.set_timer(timeout, TIMER);
    }
    const auction = mode === "auction";
    const what = auction
      ? `a sealed-bid auction (${price} price) among ${n} participants. Bid a whole number ` +
        `from ${minBid} to ${maxBid}, e.g. "bid ${minBid}"`
      : `a sealed exchange among ${n} participants. Answer in at most ${st.max_answer_bytes} bytes`;
    const clock = timeout === null ? "" : ` Everyone must answer within ${seconds(timeout)} s, or it is called off.`;
    const seated = st.participants.length;
    const warning = st.reveal_private !== false
      ? " WARNING: in this channel private messages to the bot become readable in the " +
        "transcript export once the bot's run ends: every answer will be, even if the exchange " +
        "is called off."
      : "";
    this.ctx.post({
      text:
        `SealedExchangeBot: ${what}. Question: ${JSON.stringify(question)} ` +
        `(${st.question_hash}). Send your answer PRIVATELY to the bot (to: ${this.ctx.bot_slot}); ` +
        "public answers do not count. Each answer is sealed with a public commitment; all are " +
        "revealed together once every participant has answered. Until then anyone may say " +
        `"withdraw" to call it off, and nothing is revealed.${clock} To keep a short answer ` +
        'sealed even after a withdrawal, send data {"answer": ..., "nonce": "<random text>"}. ' +
        `Participants: ${seated} of ${n} seated.${warning}`,
      data: Object.assign(
        {
          type: "rules",
          question,
          question_hash: st.question_hash,
          mode,
          participants: n,
        },
        this.progress(),
        auction
          ? { min_bid: minBid, max_bid: maxBid, price }
          : { max_answer_bytes: st.max_answer_bytes },
        {
          answer_timeout_ms: timeout,
          deadline: st.deadline,
          reveal_private: st.reveal_private,
          scheme: SCHEME,
        }
      ),
    });
    this.save();
  }

  on_join(player) {
    const st = this.st;
    if (!st || st.phase !== "open" || !this.addParticipant(player)) {
      return;
    }
    const full = st.participants.length === st.n;
    this.ctx.post({
      text:
        `${player.name} is participant ${st.participants.length} of ${st.n}. ` +
        (full ? "Everyone is seated. " : "") +
        `Waiting for answers from ${this.waitingText()}; send yours PRIVATELY to the bot.`,
      data: Object.assign({ type: "participant", slot: player.slot }, this.progress()),
    });
    this.save();
  }

  on_leave(player) {
    const st = this.st;
    if (!st || st.phase !== "open" || !this.isParticipant(player.slot)) {
      return;
    }
    this.callOff("left", player.slot, `${this.nameOf(player.slot)} left the channel`);
    this.save();
  }

  on_timer(tag) {
    const st = this.st;
    // Only the answers' clock counts, and only once its deadline is reached.
    if (!st || tag !== TIMER || st.phase !== "open" || st.deadline === null ||
      this.ctx.now() < st.deadline) {
      return;
    }
    this.callOff("timeout", null, "time ran out before every answer was in");
    this.save();
  }

  on_message(msg) {
    const st = this.st;
    if (!st || msg.kind !== "user") {
      return;
    }
    const toBot = msg.private && msg.to === this.ctx.bot_slot;
    if (msg.private && !toBot) {
      return;
    }
    const intent = parseIntent(msg.body, toBot, st.mode);
    if (intent === null) {
      return;
    }
    if (st.phase !== "open") {
      return this.violation(msg.sender, "GAME_OVER",
        "The exchange is over: nothing more is taken.");
    }
    if (!this.isParticipant(msg.sender)) {
      const seated = st.participants.map((p) => p.slot).join(", ") || "nobody yet";
      return this.violation(msg.sender, "BAD_TURN",
        `You are not one of the ${st.n} participants (seated: ${seated}).`);
    }
    if (intent.kind === "withdraw") {
      this.callOff("withdrawn", msg.sender, `${this.nameOf(msg.sender)} withdrew`);
      this.save();
      return;
    }
    if (intent.kind === "bad_action") {
      return this.violation(msg.sender, "BAD_MOVE",
        'The only action is "withdraw" ({"action": "withdraw"}).');
    }
    if (!toBot) {
      return this.violation(msg.sender, "BAD_MOVE",
        `Answers must be sent privately to the bot (to: ${this.ctx.bot_slot}). This one was ` +
        "public, so everyone has seen it: it does not count. " +
        (this.answerOf(msg.sender) === null ? "Send your answer privately." : "Your sealed answer stands."));
    }
    if (this.answerOf(msg.sender) !== null) {
      const mine = this.answerOf(msg.sender);
      return this.violation(msg.sender, "ALREADY_ANSWERED",
        `You already answered (sealed as number ${mine.order}, commitment ${mine.commitment}); ` +
        "the first answer stands and cannot be changed. Say \"withdraw\" to call the exchange off.");
    }
    const checked = this.check(intent);
    if (checked.error) {
      return this.violation(msg.sender, "BAD_MOVE", checked.error);
    }
    this.seal(msg.sender, checked.answer, checked.nonce);
    this.save();
  }

  // The answer an attempt carries, as the string to seal, or the reason it is refused.
  check(intent) {
    const st = this.st;
    if (intent.nonce !== undefined &&
      (typeof intent.nonce !== "string" || intent.nonce === "" || utf8Bytes(intent.nonce) > MAX_NONCE_BYTES)) {
      return { error: `A nonce must be a string of 1 to ${MAX_NONCE_BYTES} bytes.` };
    }
    if (st.mode === "auction") {
      const bid = parseBid(intent.value);
      const range = `A bid is a whole number from ${st.min_bid} to ${st.max_bid}: "bid ${st.min_bid}" or {"bid": ${st.min_bid}}.`;
      if (bid === null) {
        return { error: range };
      }
      if (bid < st.min_bid || bid > st.max_bid) {
        return { error: `${bid} is out of range. ${range}` };
      }
      return { answer: String(bid), nonce: intent.nonce };
    }
    if (typeof intent.value !== "string") {
      return { error: 'An answer is text: send it as the message\'s text or as {"answer": "..."}.' };
    }
    const answer = intent.value.trim();
    if (answer === "") {
      return { error: "The answer is empty: send some text." };
    }
    const size = utf8Bytes(JSON.stringify(answer)) - 2;
    if (size > st.max_answer_bytes) {
      return {
        error: `The answer is too long: ${size} bytes, at most ${st.max_answer_bytes} (quotes, ` +
          "backslashes, line breaks and tabs count 2). Send a shorter one.",
      };
    }
    return { answer, nonce: intent.nonce };
  }

  // Seals `answer` for `slot`: a salt, a commitment, a private receipt and a public post; the
  // reveal when it is the last one.
  seal(slot, answer, nonce) {
    const st = this.st;
    let salt = this.ctx.random_bytes(16);
    if (nonce !== undefined) {
      salt = this.ctx.sha256(salt + ":" + nonce).slice(0, 32);
    }
    const commitment = this.ctx.commit(answer, salt);
    const order = st.answers.length + 1;
    st.answers.push({ slot, answer, salt, commitment, order });
    const progress = this.progress();
    this.ctx.post_to(slot, {
      text:
        `Sealed your answer ${JSON.stringify(answer)} as number ${order} (salt ${salt}, ` +
        `commitment ${commitment}). It is revealed only when all ${st.n} answers are in.`,
      data: { type: "your_answer", answer, salt, commitment, order },
    });
    const last = st.answers.length === st.n;
    this.ctx.post({
      text:
        `${this.nameOf(slot)}'s answer is sealed (${order} of ${st.n}, commitment ${commitment}).` +
        (last ? " That was the last one: revealing." : ` Waiting for ${this.waitingText()}.`),
      data: Object.assign({ type: "sealed", slot, commitment, order }, progress,
        { deadline: st.deadline }),
    });
    if (last) {
      this.reveal();
    }
  }

  reveal() {
    const st = this.st;
    st.phase = "over";
    this.ctx.cancel_timer(TIMER);
    const answers = st.answers.map((a) => ({
      slot: a.slot, answer: a.answer, salt: a.salt, commitment: a.commitment,
    }));
    const data = {
      type: "reveal",
      question_hash: st.question_hash,
      mode: st.mode,
      scheme: SCHEME,
      channel_id: this.ctx.channel_id,
      bot_slot: this.ctx.bot_slot,
      answers,
    };
    let text;
    let reason;
    if (st.mode === "auction") {
      // Highest bid first; equal bids in the order they were sealed.
      const bids = st.answers
        .map((a) => ({ slot: a.slot, bid: Number(a.answer), order: a.order }))
        .sort((x, y) => (y.bid - x.bid) || (x.order - y.order));
      const winner = bids[0];
      const price = st.price === "first" || bids.length < 2 ? winner.bid : bids[1].bid;
      data.winner = winner.slot;
      data.price = price;
      data.price_rule = st.price;
      data.bids = bids.map((b) => ({ slot: b.slot, bid: b.bid }));
      const list = bids.map((b) => `${b.slot} ${b.bid}`).join(", ");
      text =
        `All ${st.n} bids are in: ${list}. ${this.nameOf(winner.slot)} wins and pays ${price} ` +
        `(${st.price} price). Salts and commitments are in data.answers; the auction is over.`;
      reason = `${this.nameOf(winner.slot)} wins at ${price} (${st.price} price)`;
    } else {
      const list = st.answers.map((a) => `${a.slot}: ${JSON.stringify(a.answer)}`).join("; ");
      text =
        `All ${st.n} answers are in. ${list}. Salts and commitments are in data.answers; the ` +
        "exchange is over.";
      reason = `all ${st.n} answers revealed`;
    }
    this.ctx.post({ text, data });
    this.ctx.end(endReason(reason));
  }

  // Ends the exchange with nothing revealed.
  callOff(reason, by, headline) {
    const st = this.st;
    st.phase = "over";
    this.ctx.cancel_timer(TIMER);
    const answered = st.answers.map((a) => a.slot);
    const missing = st.participants.map((p) => p.slot).filter((s) => !answered.includes(s));
    // Nothing of an answer is kept past this point either.
    st.answers = st.answers.map((a) => ({ slot: a.slot, commitment: a.commitment, order: a.order }));
    this.ctx.post({
      text: `Called off: ${headline}. No answer is revealed. The exchange is over.`,
      data: {
        type: "called_off",
        reason,
        by,
        answered,
        missing,
        open_seats: st.n - st.participants.length,
      },
    });
    this.ctx.end(endReason(`called off: ${headline}`));
  }

  addParticipant(player) {
    const st = this.st;
    if (st.participants.length >= st.n || this.isParticipant(player.slot)) {
      return false;
    }
    if (!this.ctx.slots().some((s) => s.slot === player.slot && s.kind === "invite")) {
      return false;
    }
    st.participants.push({ slot: player.slot, name: player.name });
    return true;
  }

  isParticipant(slot) {
    return this.st.participants.some((p) => p.slot === slot);
  }

  answerOf(slot) {
    return this.st.answers.find((a) => a.slot === slot) || null;
  }

  nameOf(slot) {
    const found = this.st.participants.find((p) => p.slot === slot);
    return found ? found.name : slot;
  }

  // Who is seated, who has yet to answer, and how many places are free.
  progress() {
    const st = this.st;
    const seated = st.participants.map((p) => p.slot);
    return {
      seated,
      waiting: seated.filter((s) => this.answerOf(s) === null),
      open_seats: st.n - seated.length,
    };
  }

  waitingText() {
    const st = this.st;
    const progress = this.progress();
    const names = progress.waiting.map((s) => this.nameOf(s));
    if (progress.open_seats > 0) {
      names.push(`${progress.open_seats} participant${progress.open_seats === 1 ? "" : "s"} not yet seated`);
    }
    return names.join(", ") || "nobody";
  }

  violation(slot, code, message) {
    this.ctx.post_to(slot, {
      text: `${code}: ${message}`,
      data: { type: "violation", code, message },
    });
  }

  save() {
    this.ctx.set_state(this.st);
  }
}

// What a message means to the bot: {kind: "withdraw"}, {kind: "bad_action"}, {kind: "answer",
// value, nonce}, or null for chat. `toBot`: the message is private to the bot; any such message
// is an attempt.
function parseIntent(body, toBot, mode) {
  const data = body.data !== null && typeof body.data === "object" ? body.data : null;
  const text = typeof body.text === "string" ? body.text.trim() : null;
  if (data !== null && "action" in data) {
    const action = typeof data.action === "string" ? data.action.trim().toLowerCase() : null;
    return action === "withdraw" ? { kind: "withdraw" } : { kind: "bad_action" };
  }
  const keys = mode === "auction" ? ["bid", "answer"] : ["answer"];
  const key = data === null ? undefined : keys.find((k) => k in data);
  if (key !== undefined) {
    return { kind: "answer", value: data[key], nonce: data.nonce };
  }
  if (text !== null && /^withdraw[.!]?$/i.test(text)) {
    return { kind: "withdraw" };
  }
  if (toBot) {
    return { kind: "answer", value: text === null ? undefined : body.text, nonce: data === null ? undefined : data.nonce };
  }
  if (mode === "auction" && text !== null && /^(?:bid\b.*|[+-]?\d[\d.,_]*)$/i.test(text)) {
    return { kind: "answer", value: body.text };
  }
  return null;
}

// A bid from a number or from text ("250", "bid 250", "bid: 250"), or null.
function parseBid(value) {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? value : null;
  }
  if (typeof value !== "string") {
    return null;
  }
  const found = /^(?:bid\s*:?\s*)?(\d{1,16})$/i.exec(value.trim());
  if (found === null) {
    return null;
  }
  const bid = Number(found[1]);
  return Number.isSafeInteger(bid) ? bid : null;
}

function utf8Bytes(text) {
  let total = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    total += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return total;
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
  if (utf8Bytes(text) <= 200) {
    return text;
  }
  let out = "";
  for (const ch of text) {
    if (utf8Bytes(out + ch) > 197) {
      break;
    }
    out += ch;
  }
  return out + "...";
}

function seconds(ms) {
  return Math.round(ms / 100) / 10;
}
