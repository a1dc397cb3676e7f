// ContractJudgeBot: parties agree on a contract (text plus structured clauses), and the judge
// rules on each clause by fixed rules it can check: a confirmation by the beneficiary, a page
// the server fetched for it, a deadline that passed. What it cannot check it records as
// disputed, with everything the parties said. Every ruling names its clause, the rule applied
// and the seqs of the messages it rests on.
//
// Params (all optional):
// - parties: how many parties sign, an integer from 2 to 5 (default 2).
//
// Parties: the first `parties` participants to take invite (player) seats, in the order they
// sat down (those already seated when the judge is attached count in seat order). Spectators
// and later arrivals watch. A party is its slot: whoever holds the slot speaks for it. A party
// who leaves before every party is seated gives up the place; after that, leaving changes
// nothing (the contract binds the slot, and its clocks keep running).
//
// Flow, step by step:
// 1. On attach the judge posts the rules; once every party is seated it posts {type: "start"}.
// 2. A party proposes terms with data {"propose": {"title", "text", "clauses": [clause, ...]}}:
//    - title: 1 to 200 bytes of UTF-8; text: a string of at most 8192 bytes (may be empty);
//    - clauses: 1 to 20 of them, each an object with
//      id: 1 to 32 of a-z 0-9 _ -, unique in the contract;
//      text: 1 to 2048 bytes;
//      obligor, beneficiary: two different party slots (the obligor owes it to the beneficiary);
//      kind (optional): "deliver", "pay" or "other" (default "other"; a label, judged alike);
//      deadline_ms (ms since the epoch, later than the proposal and at most 365 days after it)
//      OR due_in_ms (ms after the agreement, 1000 to 31536000000), or neither (no deadline);
//      fulfilled_by (optional): "confirmation" (default: the beneficiary confirms), "witness"
//      (a page the server fetches shows it) or "confirmation_or_witness";
//      witness: required with "witness" and "confirmation_or_witness", refused otherwise:
//      {"url": "https://..." (at most 512 bytes, no spaces), "status": 100-599 (optional),
//      "contains": 1 to 500 bytes (optional)}.
//    At most 16 clauses may have deadlines (the judge keeps one timer per deadline, and a bot
//    has at most 16 timers pending). No other key is allowed anywhere, so nothing a party wrote
//    can sit beside the terms without being hashed. Everything wrong is listed in one BAD_TERMS.
// 3. The judge canonicalizes the terms and posts them with their hash. The terms are
//      {scheme: "mcp-multiplayer/contract-terms/v1", channel_id, judge (the judge's slot),
//       parties: [slot, ...] (seat order), title, text, clauses: [{id, text, obligor,
//       beneficiary, kind, deadline_ms, due_in_ms, fulfilled_by, witness}]}
//    with every optional field present (null when absent, kind and fulfilled_by with their
//    defaults, witness as {url, status, contains} with nulls), clauses in the order proposed,
//    strings exactly as sent. canonical = RFC 8785 (JCS) of that object: keys sorted, no
//    spaces; for these values that is Python's
//      json.dumps(terms, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
//    terms_hash = "sha256:" + hex(SHA-256(canonical as UTF-8)). The canonical JSON is at most
//    12000 bytes (so the proposal post fits one message). A new proposal replaces the pending
//    one (n counts proposals) and voids every acceptance of the old one.
// 4. Each party accepts the exact pending hash: data {"accept": "sha256:..."} or text
//    "accept sha256:..." (the 64 hex digits alone work too). When the last party accepts, the
//    contract is agreed: the terms can no longer change, and each clause's deadline becomes a
//    time (deadline_ms, or the agreement's time + due_in_ms) with a timer "clause:<id>" (a
//    deadline more than 24 h away is reached in legs of at most 24 h). If an absolute deadline
//    passed before everyone accepted, the proposal lapses instead (propose again).
// 5. After the agreement, any party may post (data; text "confirm <id>" also works):
//    - {"confirm": "<clause id>"}: only the clause's beneficiary, and not on a "witness" clause;
//    - {"claim": {"clause": id, "text": str}}: a statement for the record (fulfilment, breach,
//      anything); it decides nothing by itself;
//    - {"dispute": {"clause": id, "text": str}}: the clause is disputed (see the rules below);
//    - {"evidence": {"clause": id, "url": "https://..."}}: asks the judge to have the server
//      fetch the URL (default: the clause's witness url); the result comes back to the judge
//      alone (on_fetch) and is posted as an attestation. Only "clause" and "url" are allowed:
//      the judge never reads an attestation, a status or a page from a participant's message.
//    Claim and dispute texts are 1 to 500 bytes counted in their JSON form (a quote, backslash
//    or line break counts 2, another control character 6).
// 6. When every clause has a ruling, the judge posts the record and ends its run (ctx.end):
//    the server reveals its seed, and later messages are no longer its events.
//
// Rulings, one per clause, never changed once made (rule codes):
// - CONFIRMED_BY_BENEFICIARY -> "fulfilled": the beneficiary confirmed before the deadline (or
//   at any time, without one). Cites the agreement and the confirmation.
// - WITNESS_SHOWED -> "fulfilled": a fetch the judge asked for itself returned, for the
//   clause's witness url, the status asked (or, with none asked, a 2xx answer with ok true)
//   and a body whose text contains the string asked (if any), fetched no later than the
//   deadline (the server's fetched_at). Cites the agreement, the evidence request and the
//   fetch_attested notice (result.seq). A fetch of another URL, or for a "confirmation" clause,
//   is recorded but rules nothing.
// - DEADLINE_PASSED -> "breached": the clause's timer fired at its deadline and it had no
//   ruling. Cites the agreement and every witness attestation of the clause that did not
//   match. A bot learns no seq for a timer event, so the ruling names the timer instead:
//   timer {tag, due}, which is the timer_fired notice with that tag and due (its set_by is the
//   last acceptance when the deadline was within 24 h of the agreement). If a witness fetch of
//   the clause is still pending then, the judge holds the ruling (a "held" post) until the
//   results are in or 60 s have passed, and a result fetched by the deadline can still fulfil.
// - DISPUTED -> "disputed": a party disputed the clause before its deadline and before any
//   ruling. Cites the agreement, the earlier claims on the clause and the dispute. The judge
//   decides nothing more about it.
// - A confirmation or evidence at or after the deadline, or after the ruling, is refused
//   (CLAUSE_CLOSED). A claim or dispute after the deadline or after the ruling is recorded
//   ("recorded" post, late and/or against the ruling: it counts as a challenge of the ruling
//   in the record) and changes no ruling.
//
// What the judge can and cannot decide:
// - It can decide only what its inputs show: who posted which message at which seq and time
//   (the server's), whether the beneficiary confirmed before a deadline, whether a page the
//   server fetched at a recorded time answered with a status and contained a text.
// - It cannot know whether goods arrived, money moved, or work is any good; a confirmation is
//   the beneficiary's word, nothing more. It cannot tell a false claim from a true one, so
//   claims decide nothing, and a dispute ends at "disputed": settling it is for people.
// - A witness shows what one URL answered to the server at one moment: whoever controls the
//   page controls the witness, and a page can change after the fetch. The fetch is made by the
//   server outside the bot, which may refuse the address or time out; a failed fetch proves
//   nothing either way and rules nothing. Anything a participant posts that looks like an
//   attestation is only text.
// - Deadlines are the server's clock: a timer fires at or a little after its due time, and a
//   message counts at the time the server stored it.
// - A clause with no deadline that nobody confirms, witnesses or disputes stays open, and the
//   run does not end.
//
// Caps (refusals say which): 24 claims and disputes in all (RECORD_FULL), 12 evidence requests
// in all and 8 pending at a time (BAD_EVIDENCE), so that the state and the record stay small.
//
// Posts (every one with data):
// - {type: "rules", parties (N), seated: [slot], scheme, limits}: on attach.
// - {type: "start", parties: [slot], names: [name]}: every party is seated.
// - {type: "proposal", n, by, seq (the proposal's message), terms, terms_hash, voided: null |
//   {n, terms_hash, accepted: [slot]}}.
// - {type: "accepted", n, by, seq, terms_hash, waiting_for: [slot]}.
// - {type: "lapsed", n, terms_hash, clauses: [id]}: an absolute deadline passed before the
//   last acceptance; there is no pending proposal any more.
// - {type: "agreed", n, terms_hash, proposal_seq, accepted: [{slot, seq}], agreed_at, cites,
//   deadlines: [{clause, due, tag}]}.
// - {type: "ruling", clause, outcome: "fulfilled" | "breached" | "disputed", rule: {code,
//   text}, cites: [seq] (ascending), at (ms), obligor, beneficiary, due (ms or null), and per
//   rule: confirmation {by, seq} | attestation {seq, requested_by, url, status, fetched_at,
//   body_sha256} | timer {tag, due, fired_at, held_until} | dispute {by, seq, text}}.
// - {type: "recorded", kind: "claim" | "dispute", clause, by, seq, at, text, late (at or after
//   the deadline), ruling: null | {outcome, code} (the ruling it challenges, which stands)}.
// - {type: "evidence_requested", clause, by, seq, url, tag, qualifying (can fulfil the clause)}.
// - {type: "attestation", clause, seq (the fetch_attested notice), requested_by, url, ok,
//   status, error (code or null), fetched_at, body_sha256, body_bytes, truncated, matched
//   (true | false | null when it cannot rule), why}.
// - {type: "held", clause, due, until, waiting_for: [seq of evidence requests]}.
// - {type: "record", scheme, terms_hash, part, parts, parties, proposal: {n, by, seq},
//   accepted, agreed_at, summary: {fulfilled, breached, disputed}, terms, rulings: [ruling],
//   entries: [entry]}, then, if it does not fit one message, {type: "record_part", terms_hash,
//   part, parts, rulings, entries} for the rest (concatenate rulings and entries in part order).
//   Rulings are in the order made; entries (claims, disputes, evidence requests, attestations,
//   each with kind) in channel order.
//
// Violations go privately to whoever made them and change nothing, data {type: "violation",
// code, message} (BAD_TERMS adds problems: [str], BAD_HASH adds pending_hash): NOT_A_PARTY,
// NOT_STARTED (parties still missing), BAD_TERMS, BAD_HASH (no pending proposal, or not its
// hash), ALREADY_ACCEPTED, ALREADY_AGREED (propose or accept after the agreement), NOT_AGREED
// (confirm, claim, dispute or evidence before it), BAD_REQUEST (more than one action in a
// message, or a malformed one), UNKNOWN_CLAUSE, NOT_BENEFICIARY, WITNESS_ONLY (a confirmation
// on a "witness" clause), CLAUSE_CLOSED, BAD_EVIDENCE, RECORD_FULL, GAME_OVER (the server stops
// delivering events once the run ends, so this answers only what still reaches it). What counts
// as an attempt: data with a propose, accept, confirm, claim, evidence or dispute key; text
// "accept ..." or "confirm ...". Anything else is chat and is ignored, as are private messages
// to others. Messages to the judge may be public or private; everything but a violation is
// answered publicly.

const SCHEME = "mcp-multiplayer/contract-terms/v1";
const PARAMS = ["parties"];
const ACTIONS = ["propose", "accept", "confirm", "claim", "evidence", "dispute"];
const KINDS = ["deliver", "pay", "other"];
const FULFILLED_BY = ["confirmation", "witness", "confirmation_or_witness"];
const PROPOSAL_KEYS = ["title", "text", "clauses"];
const CLAUSE_KEYS = [
  "id", "text", "obligor", "beneficiary", "kind", "deadline_ms", "due_in_ms", "fulfilled_by",
  "witness",
];
const WITNESS_KEYS = ["url", "status", "contains"];
const DAY_MS = 86400000;
const YEAR_MS = 365 * DAY_MS;
const MIN_DUE_IN_MS = 1000;
const MAX_TITLE_BYTES = 200;
const MAX_TEXT_BYTES = 8192;
const MAX_CLAUSE_TEXT_BYTES = 2048;
const MAX_CLAUSES = 20;
const MAX_DEADLINES = 16;
const MAX_TERMS_BYTES = 12000;
const MAX_URL_BYTES = 512;
const MAX_CONTAINS_BYTES = 500;
const MAX_STATEMENT_JSON_BYTES = 502;
const MAX_STATEMENTS = 24;
const MAX_EVIDENCE = 12;
const MAX_PENDING_FETCHES = 8;
const MAX_PROBLEMS = 12;
const GRACE_MS = 60000;
const PART_BYTES = 15000;
const CLAUSE_ID = /^[a-z0-9_-]{1,32}$/;
const HEX_HASH = /^[0-9a-f]{64}$/;
const TIMER_PREFIX = "clause:";

const RULES = {
  CONFIRMED_BY_BENEFICIARY: {
    outcome: "fulfilled",
    text: "The beneficiary confirmed the clause fulfilled before its deadline (or, without " +
      "one, at any time).",
  },
  WITNESS_SHOWED: {
    outcome: "fulfilled",
    text: "A fetch the judge asked for showed the clause's witness: the url answered with the " +
      "status and text the clause asks for, fetched no later than the deadline.",
  },
  DEADLINE_PASSED: {
    outcome: "breached",
    text: "The deadline passed with no confirmation by the beneficiary and no fetch showing " +
      "the clause's witness.",
  },
  DISPUTED: {
    outcome: "disputed",
    text: "A party disputed the clause before its deadline and before any ruling; the judge " +
      "does not decide disputes, it records them.",
  },
};

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params === null || params === undefined ? {} : params;
    this.s = ctx.get_state();
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
    const parties = integerParam(params, "parties", 2, 2, 5);
    this.s = {
      phase: "waiting",
      n_parties: parties,
      parties: [],
      proposals: 0,
      pending: null,
      contract: null,
      clauses: [],
      rulings: [],
      entries: [],
      fetches: [],
      statements: 0,
      evidence: 0,
    };
    for (const player of this.ctx.players()) {
      this.addParty(player);
    }
    this.ctx.post({
      text:
        `ContractJudgeBot: ${parties} parties agree on terms, then the judge rules on each ` +
        "clause: fulfilled (the beneficiary confirmed, or a page the server fetched shows it), " +
        "breached (its deadline passed without that) or disputed (a party disputed it). " +
        'Propose with data {"propose": {"title", "text", "clauses": [...]}}; accept with ' +
        '{"accept": "<terms_hash>"}; then {"confirm": id}, {"claim": {clause, text}}, ' +
        '{"dispute": {clause, text}}, {"evidence": {clause, url}}. The rules are in the ' +
        "header of the judge's source (get_bot_code).",
      data: {
        type: "rules",
        parties,
        seated: this.s.parties.map((p) => p.slot),
        scheme: SCHEME,
        limits: {
          clauses: MAX_CLAUSES,
          deadlines: MAX_DEADLINES,
          terms_bytes: MAX_TERMS_BYTES,
          title_bytes: MAX_TITLE_BYTES,
          text_bytes: MAX_TEXT_BYTES,
          clause_text_bytes: MAX_CLAUSE_TEXT_BYTES,
          statements: MAX_STATEMENTS,
          evidence: MAX_EVIDENCE,
          pending_fetches: MAX_PENDING_FETCHES,
          evidence_grace_ms: GRACE_MS,
        },
      },
    });
    this.maybeStart();
    this.save();
  }

  on_join(player) {
    if (!this.s || this.s.phase !== "waiting") {
      return;
    }
    this.addParty(player);
    this.maybeStart();
    this.save();
  }

  on_leave(player) {
    const s = this.s;
    if (!s || s.phase !== "waiting") {
      return;
    }
    const index = s.parties.findIndex((p) => p.slot === player.slot);
    if (index >= 0) {
      s.parties.splice(index, 1);
      this.save();
    }
  }

  on_message(msg) {
    const s = this.s;
    if (!s || msg.kind !== "user") {
      return;
    }
    if (msg.private && msg.to !== this.ctx.bot_slot) {
      return;
    }
    const action = parseAction(msg.body);
    if (action === null) {
      return;
    }
    const who = msg.sender;
    if (s.phase === "over") {
      return this.violation(who, "GAME_OVER", "The contract has been judged; the record is posted.");
    }
    if (!s.parties.some((p) => p.slot === who)) {
      return this.violation(who, "NOT_A_PARTY",
        `You are not a party to this contract (parties: ${this.partyList()}).`);
    }
    if (s.phase === "waiting") {
      return this.violation(who, "NOT_STARTED",
        `Waiting for ${s.n_parties - s.parties.length} more ` +
        `part${s.n_parties - s.parties.length === 1 ? "y" : "ies"} to take a seat.`);
    }
    if (action.kind === "bad") {
      return this.violation(who, "BAD_REQUEST", action.reason);
    }
    const handlers = {
      propose: () => this.propose(msg, action.value),
      accept: () => this.accept(msg, action.value),
      confirm: () => this.confirm(msg, action.value),
      claim: () => this.statement(msg, action.value, "claim"),
      dispute: () => this.statement(msg, action.value, "dispute"),
      evidence: () => this.evidence(msg, action.value),
    };
    if (handlers[action.kind]()) {
      this.save();
    }
  }

  on_timer(tag) {
    const s = this.s;
    if (!s || s.phase !== "agreed" || typeof tag !== "string" || !tag.startsWith(TIMER_PREFIX)) {
      return;
    }
    const i = this.clauseIndex(tag.slice(TIMER_PREFIX.length));
    if (i < 0) {
      return;
    }
    const st = s.clauses[i];
    const now = this.ctx.now();
    if (st.ruled || st.due === null) {
      return;
    }
    if (now < st.due) {
      // A leg of a deadline more than 24 h away: on to the next leg.
      this.ctx.set_timer(Math.min(st.due - now, DAY_MS), tag);
      this.save();
      return;
    }
    if (st.hold_until === null && this.pendingWitness(i).length > 0) {
      st.hold_until = now + GRACE_MS;
      this.ctx.set_timer(GRACE_MS, tag);
      const waiting = this.pendingWitness(i).map((f) => f.seq);
      this.ctx.post({
        text:
          `Clause ${st.id}: its deadline passed, but witness evidence it asked for before then ` +
          `is still being fetched (requests ${waiting.join(", ")}). The ruling waits for it, ` +
          `${GRACE_MS / 1000} s at most.`,
        data: { type: "held", clause: st.id, due: st.due, until: st.hold_until, waiting_for: waiting },
      });
      this.save();
      return;
    }
    if (st.hold_until !== null && now < st.hold_until) {
      return;
    }
    this.deadlineRuling(i, false);
    this.maybeFinish();
    this.save();
  }

  on_fetch(result) {
    const s = this.s;
    if (!s || s.phase !== "agreed" || !isObject(result)) {
      return;
    }
    const index = s.fetches.findIndex(
      (f) => f.tag === result.tag && f.seq === result.requested_by);
    if (index < 0) {
      return;
    }
    const request = s.fetches.splice(index, 1)[0];
    const i = this.clauseIndex(request.clause);
    const clause = s.contract.terms.clauses[i];
    const st = s.clauses[i];
    const verdict = judgeFetch(clause, st, request, result);
    const body = isObject(result.body) ? result.body : null;
    const seq = Number.isSafeInteger(result.seq) ? result.seq : null;
    const entry = {
      kind: "attestation",
      clause: clause.id,
      seq,
      requested_by: request.seq,
      at: this.ctx.now(),
      url: request.url,
      qualifying: request.qualifying,
      ok: result.ok === true,
      status: Number.isSafeInteger(result.status) ? result.status : null,
      error: isObject(result.error) && typeof result.error.code === "string"
        ? result.error.code.slice(0, 64) : null,
      fetched_at: Number.isSafeInteger(result.fetched_at) ? result.fetched_at : null,
      body_sha256: body && typeof body.sha256 === "string" ? body.sha256.slice(0, 80) : null,
      body_bytes: body && Number.isSafeInteger(body.bytes) ? body.bytes : null,
      truncated: body ? body.truncated === true : null,
      matched: verdict.matched,
      why: verdict.why,
    };
    s.entries.push(entry);
    const view = Object.assign({ type: "attestation" }, entry);
    delete view.kind;
    delete view.qualifying;
    this.ctx.post({
      text:
        `Evidence for clause ${clause.id} (request ${request.seq}): the server fetched ` +
        `${request.url}: ${entry.ok ? `status ${entry.status}` : `failed (${entry.error || "?"})`}. ` +
        verdict.why,
      data: view,
    });
    if (!st.ruled) {
      if (verdict.matched === true) {
        this.rule(i, "WITNESS_SHOWED", [request.seq, seq], {
          attestation: {
            seq,
            requested_by: request.seq,
            url: request.url,
            status: entry.status,
            fetched_at: entry.fetched_at,
            body_sha256: entry.body_sha256,
          },
        }, true);
      } else if (st.hold_until !== null && this.pendingWitness(i).length === 0) {
        this.deadlineRuling(i, true);
      }
    }
    this.maybeFinish();
    this.save();
  }

  // ---- actions: each returns true when it changed the state ----

  propose(msg, value) {
    const s = this.s;
    if (s.phase === "agreed") {
      return this.violation(msg.sender, "ALREADY_AGREED",
        `The contract ${s.contract.hash} is agreed; its terms can no longer change.`);
    }
    const checked = checkTerms(value, s.parties.map((p) => p.slot), this.ctx.now());
    if (checked.problems.length === 0) {
      const terms = {
        scheme: SCHEME,
        channel_id: this.ctx.channel_id,
        judge: this.ctx.bot_slot,
        parties: s.parties.map((p) => p.slot),
        title: value.title,
        text: value.text,
        clauses: checked.clauses,
      };
      const canonical = canonicalJson(terms);
      const size = utf8Bytes(canonical);
      if (size > MAX_TERMS_BYTES) {
        checked.problems.push(
          `the canonical terms are ${size} bytes; at most ${MAX_TERMS_BYTES} (shorten the texts)`);
      } else {
        return this.newProposal(msg, JSON.parse(canonical), "sha256:" + this.ctx.sha256(canonical));
      }
    }
    const problems = checked.problems.slice(0, MAX_PROBLEMS);
    if (checked.problems.length > MAX_PROBLEMS) {
      problems.push(`and ${checked.problems.length - MAX_PROBLEMS} more`);
    }
    return this.violation(msg.sender, "BAD_TERMS",
      `The proposal is refused: ${problems.join("; ")}.`, { problems });
  }

  newProposal(msg, terms, hash) {
    const s = this.s;
    const old = s.pending;
    const voided = old === null ? null : {
      n: old.n,
      terms_hash: old.hash,
      accepted: old.accepted.map((a) => a.slot),
    };
    s.proposals += 1;
    s.pending = { n: s.proposals, by: msg.sender, seq: msg.seq, terms, hash, accepted: [] };
    const deadlines = terms.clauses.filter((c) => c.deadline_ms !== null || c.due_in_ms !== null);
    this.ctx.post({
      text:
        `Proposal ${s.proposals} by ${this.name(msg.sender)} (message ${msg.seq}): ` +
        `"${terms.title}", ${terms.clauses.length} clause${terms.clauses.length === 1 ? "" : "s"}` +
        ` (${deadlines.length} with a deadline). terms_hash ${hash}. Every party accepts with ` +
        `{"accept": "${hash}"}.` +
        (voided === null ? "" : ` It replaces proposal ${voided.n}, whose acceptances are void.`),
      data: {
        type: "proposal",
        n: s.proposals,
        by: msg.sender,
        seq: msg.seq,
        terms,
        terms_hash: hash,
        voided,
      },
    });
    return true;
  }

  accept(msg, value) {
    const s = this.s;
    const who = msg.sender;
    if (s.phase === "agreed") {
      return this.violation(who, "ALREADY_AGREED", `The contract ${s.contract.hash} is agreed.`);
    }
    const p = s.pending;
    const pendingHash = p === null ? null : p.hash;
    if (p === null) {
      return this.violation(who, "BAD_HASH", "There is no pending proposal to accept.",
        { pending_hash: null });
    }
    let hash = typeof value === "string" ? value.trim() : null;
    if (hash !== null && HEX_HASH.test(hash)) {
      hash = "sha256:" + hash;
    }
    if (hash !== p.hash) {
      return this.violation(who, "BAD_HASH",
        `That is not the pending proposal's hash: proposal ${p.n} is ${p.hash}. Accept with ` +
        `{"accept": "${p.hash}"}.`, { pending_hash: pendingHash });
    }
    if (p.accepted.some((a) => a.slot === who)) {
      return this.violation(who, "ALREADY_ACCEPTED",
        `You accepted proposal ${p.n} already; waiting for ${this.waitingFor(p).join(", ")}.`);
    }
    const now = this.ctx.now();
    const lapsed = p.terms.clauses
      .filter((c) => c.deadline_ms !== null && c.deadline_ms <= now)
      .map((c) => c.id);
    if (lapsed.length > 0) {
      s.pending = null;
      this.ctx.post({
        text:
          `Proposal ${p.n} lapsed: the deadline of clause ${lapsed.join(", ")} passed before ` +
          "every party accepted. Propose again.",
        data: { type: "lapsed", n: p.n, terms_hash: p.hash, clauses: lapsed },
      });
      return true;
    }
    p.accepted.push({ slot: who, seq: msg.seq });
    const waiting = this.waitingFor(p);
    this.ctx.post({
      text:
        `${this.name(who)} accepts proposal ${p.n} (${p.hash}).` +
        (waiting.length > 0 ? ` Waiting for ${waiting.join(", ")}.` : ""),
      data: { type: "accepted", n: p.n, by: who, seq: msg.seq, terms_hash: p.hash, waiting_for: waiting },
    });
    if (waiting.length === 0) {
      this.agree();
    }
    return true;
  }

  agree() {
    const s = this.s;
    const p = s.pending;
    const now = this.ctx.now();
    const accepted = s.parties.map((party) => p.accepted.find((a) => a.slot === party.slot));
    s.contract = {
      n: p.n,
      by: p.by,
      seq: p.seq,
      hash: p.hash,
      terms: p.terms,
      accepted,
      cites: ascending([p.seq, ...accepted.map((a) => a.seq)]),
      agreed_at: now,
    };
    s.pending = null;
    s.phase = "agreed";
    s.clauses = p.terms.clauses.map((c) => ({
      id: c.id,
      due: c.deadline_ms !== null ? c.deadline_ms : c.due_in_ms !== null ? now + c.due_in_ms : null,
      ruled: false,
      hold_until: null,
    }));
    const deadlines = [];
    for (const st of s.clauses) {
      if (st.due !== null) {
        const tag = TIMER_PREFIX + st.id;
        this.ctx.set_timer(Math.min(st.due - now, DAY_MS), tag);
        deadlines.push({ clause: st.id, due: st.due, tag });
      }
    }
    this.ctx.post({
      text:
        `Agreed: every party accepted proposal ${p.n} (${p.hash}). ` +
        (deadlines.length === 0
          ? "No clause has a deadline."
          : `Deadlines: ${deadlines.map((d) => `${d.clause} at ${iso(d.due)}`).join(", ")}.`) +
        ' Now: {"confirm": id} (beneficiary), {"claim": {clause, text}}, {"dispute": ' +
        '{clause, text}}, {"evidence": {clause, url}}.',
      data: {
        type: "agreed",
        n: p.n,
        terms_hash: p.hash,
        proposal_seq: p.seq,
        accepted,
        agreed_at: now,
        cites: s.contract.cites,
        deadlines,
      },
    });
  }

  confirm(msg, value) {
    const s = this.s;
    const who = msg.sender;
    if (s.phase !== "agreed") {
      return this.violation(who, "NOT_AGREED", "There is no agreed contract yet.");
    }
    if (typeof value !== "string" || value === "") {
      return this.violation(who, "BAD_REQUEST", 'Confirm takes a clause id: {"confirm": "a"}.');
    }
    const i = this.clauseIndex(value);
    if (i < 0) {
      return this.unknownClause(who, value);
    }
    const clause = s.contract.terms.clauses[i];
    const st = s.clauses[i];
    if (who !== clause.beneficiary) {
      return this.violation(who, "NOT_BENEFICIARY",
        `Only clause ${clause.id}'s beneficiary (${clause.beneficiary}) confirms its fulfilment.`);
    }
    if (clause.fulfilled_by === "witness") {
      return this.violation(who, "WITNESS_ONLY",
        `Clause ${clause.id} is fulfilled by witness evidence only: post ` +
        `{"evidence": {"clause": "${clause.id}"}}.`);
    }
    if (this.closed(i)) {
      return this.violation(who, "CLAUSE_CLOSED", this.closedReason(i));
    }
    this.rule(i, "CONFIRMED_BY_BENEFICIARY", [msg.seq],
      { confirmation: { by: who, seq: msg.seq } }, true);
    this.maybeFinish();
    return true;
  }

  statement(msg, value, kind) {
    const s = this.s;
    const who = msg.sender;
    if (s.phase !== "agreed") {
      return this.violation(who, "NOT_AGREED", "There is no agreed contract yet.");
    }
    const problem = statementProblem(value, kind);
    if (problem !== null) {
      return this.violation(who, "BAD_REQUEST", problem);
    }
    const i = this.clauseIndex(value.clause);
    if (i < 0) {
      return this.unknownClause(who, value.clause);
    }
    if (s.statements >= MAX_STATEMENTS) {
      return this.violation(who, "RECORD_FULL",
        `The record holds ${MAX_STATEMENTS} claims and disputes; it is full.`);
    }
    s.statements += 1;
    const st = s.clauses[i];
    const now = this.ctx.now();
    const ruling = st.ruled ? s.rulings.find((r) => r.clause === st.id) : null;
    const entry = {
      kind,
      clause: st.id,
      by: who,
      seq: msg.seq,
      at: now,
      text: value.text,
      late: st.due !== null && now >= st.due,
      ruling: ruling ? { outcome: ruling.outcome, code: ruling.rule.code } : null,
    };
    const earlier = s.entries
      .filter((e) => e.kind === "claim" && e.clause === st.id)
      .map((e) => e.seq);
    s.entries.push(entry);
    if (kind === "dispute" && !st.ruled && !entry.late) {
      this.rule(i, "DISPUTED", [...earlier, msg.seq], { dispute: { by: who, seq: msg.seq } }, true);
      this.maybeFinish();
      return true;
    }
    const why = entry.ruling !== null
      ? `It challenges the ruling (${entry.ruling.outcome}, ${entry.ruling.code}), which stands.`
      : entry.late
        ? "It came after the deadline: the deadline rule decides the clause; this is on record."
        : "It is on record; it decides nothing by itself.";
    this.ctx.post({
      text: `${this.name(who)}'s ${kind} on clause ${st.id} (message ${msg.seq}) is recorded. ${why}`,
      data: Object.assign({ type: "recorded" }, entry),
    });
    return true;
  }

  evidence(msg, value) {
    const s = this.s;
    const who = msg.sender;
    if (s.phase !== "agreed") {
      return this.violation(who, "NOT_AGREED", "There is no agreed contract yet.");
    }
    if (!isObject(value)) {
      return this.violation(who, "BAD_EVIDENCE",
        'Evidence is {"evidence": {"clause": id, "url": "https://..."}} (url optional).');
    }
    const extra = Object.keys(value).filter((k) => k !== "clause" && k !== "url");
    if (extra.length > 0) {
      return this.violation(who, "BAD_EVIDENCE",
        `Evidence takes only "clause" and "url", not ${extra.slice(0, 5).join(", ")}: the judge ` +
        "fetches the page itself, and never trusts an attestation, status or page content in " +
        "a participant's message.");
    }
    if (typeof value.clause !== "string") {
      return this.violation(who, "BAD_EVIDENCE", "Evidence names a clause: {\"clause\": id}.");
    }
    const i = this.clauseIndex(value.clause);
    if (i < 0) {
      return this.unknownClause(who, value.clause);
    }
    const clause = s.contract.terms.clauses[i];
    const url = value.url === undefined ? (clause.witness ? clause.witness.url : null) : value.url;
    if (url === null) {
      return this.violation(who, "BAD_EVIDENCE",
        `Clause ${clause.id} has no witness url: give one, {"url": "https://..."}.`);
    }
    const urlProblem = checkUrl(url);
    if (urlProblem !== null) {
      return this.violation(who, "BAD_EVIDENCE", `The url ${urlProblem}.`);
    }
    if (this.closed(i)) {
      return this.violation(who, "CLAUSE_CLOSED", this.closedReason(i));
    }
    if (s.evidence >= MAX_EVIDENCE) {
      return this.violation(who, "BAD_EVIDENCE",
        `The judge takes at most ${MAX_EVIDENCE} evidence requests per contract; that is spent.`);
    }
    if (s.fetches.length >= MAX_PENDING_FETCHES) {
      return this.violation(who, "BAD_EVIDENCE",
        `${MAX_PENDING_FETCHES} fetches are pending; ask again when one is back.`);
    }
    if (typeof this.ctx.request_fetch !== "function") {
      return this.violation(who, "BAD_EVIDENCE",
        "This server does not fetch evidence for bots, so witness evidence cannot be taken.");
    }
    const tag = "evidence:" + msg.seq;
    const qualifying = clause.witness !== null && url === clause.witness.url;
    this.ctx.request_fetch(url, { tag });
    s.evidence += 1;
    s.fetches.push({ tag, clause: clause.id, url, seq: msg.seq, by: who, qualifying });
    s.entries.push({ kind: "evidence", clause: clause.id, by: who, seq: msg.seq, at: this.ctx.now(), url, qualifying });
    this.ctx.post({
      text:
        `${this.name(who)} asks for evidence on clause ${clause.id}: the server will fetch ${url}` +
        (qualifying ? ", the clause's witness." : ", which is not the clause's witness: it is " +
          "recorded, and rules nothing."),
      data: { type: "evidence_requested", clause: clause.id, by: who, seq: msg.seq, url, tag, qualifying },
    });
    return true;
  }

  // ---- rulings ----

  // Rules clause `i` with `code`, citing the agreement and `cites`. `cancel`: the clause's
  // timer may still be pending (a ruling made by anything but that timer firing).
  rule(i, code, cites, extra, cancel) {
    const s = this.s;
    const clause = s.contract.terms.clauses[i];
    const st = s.clauses[i];
    st.ruled = true;
    const ruling = Object.assign({
      clause: clause.id,
      outcome: RULES[code].outcome,
      rule: { code, text: RULES[code].text },
      cites: ascending([...s.contract.cites, ...cites.filter((c) => c !== null)]),
      at: this.ctx.now(),
      obligor: clause.obligor,
      beneficiary: clause.beneficiary,
      due: st.due,
    }, extra);
    s.rulings.push(ruling);
    if (cancel && st.due !== null) {
      this.ctx.cancel_timer(TIMER_PREFIX + clause.id);
    }
    const view = this.rulingView(ruling);
    this.ctx.post({
      text:
        `Ruling on clause ${clause.id} (${clause.obligor} owes ${clause.beneficiary}): ` +
        `${ruling.outcome.toUpperCase()}. ${code}: ${RULES[code].text} Cites messages ` +
        `${ruling.cites.join(", ")}` +
        (ruling.timer ? ` and the timer_fired notice ${ruling.timer.tag} due ${ruling.timer.due}.` : "."),
      data: Object.assign({ type: "ruling" }, view),
    });
  }

  deadlineRuling(i, cancel) {
    const s = this.s;
    const st = s.clauses[i];
    const failed = s.entries
      .filter((e) => e.kind === "attestation" && e.clause === st.id && e.qualifying && e.matched === false)
      .map((e) => e.seq);
    this.rule(i, "DEADLINE_PASSED", failed, {
      timer: { tag: TIMER_PREFIX + st.id, due: st.due, fired_at: this.ctx.now(), held_until: st.hold_until },
    }, cancel);
  }

  // A stored ruling as posted: a dispute's text is kept once, in its entry.
  rulingView(ruling) {
    if (!ruling.dispute) {
      return ruling;
    }
    const entry = this.s.entries.find((e) => e.kind === "dispute" && e.seq === ruling.dispute.seq);
    return Object.assign({}, ruling, {
      dispute: { by: ruling.dispute.by, seq: ruling.dispute.seq, text: entry ? entry.text : null },
    });
  }

  maybeFinish() {
    const s = this.s;
    if (s.phase !== "agreed" || !s.clauses.every((st) => st.ruled)) {
      return;
    }
    s.phase = "over";
    const summary = { fulfilled: 0, breached: 0, disputed: 0 };
    for (const r of s.rulings) {
      summary[r.outcome] += 1;
    }
    const c = s.contract;
    const header = {
      type: "record",
      scheme: SCHEME,
      terms_hash: c.hash,
      part: 1,
      parts: 1,
      parties: s.parties.map((p) => p.slot),
      proposal: { n: c.n, by: c.by, seq: c.seq },
      accepted: c.accepted,
      agreed_at: c.agreed_at,
      summary,
      terms: c.terms,
      rulings: [],
      entries: [],
    };
    const parts = [header];
    const items = [
      ...s.rulings.map((r) => ["rulings", this.rulingView(r)]),
      ...s.entries.map((e) => ["entries", e]),
    ];
    for (const [list, item] of items) {
      const part = parts[parts.length - 1];
      part[list].push(item);
      const alone = part.type === "record_part" && part.rulings.length + part.entries.length === 1;
      if (jsonBytes(part) > PART_BYTES && !alone) {
        // Too big for this message: the item opens the next part (an item is a few KiB at
        // most, so one always fits a part of its own).
        part[list].pop();
        const next = {
          type: "record_part", terms_hash: c.hash, part: parts.length + 1, parts: 1, rulings: [],
          entries: [],
        };
        next[list].push(item);
        parts.push(next);
      }
    }
    const line =
      `${summary.fulfilled} fulfilled, ${summary.breached} breached, ${summary.disputed} disputed`;
    parts.forEach((part, k) => {
      part.parts = parts.length;
      this.ctx.post({
        text: k === 0
          ? `The record of contract ${c.hash}: ${line}.` +
            (parts.length > 1 ? ` In ${parts.length} parts.` : "")
          : `The record of contract ${c.hash}, part ${k + 1} of ${parts.length}.`,
        data: part,
      });
    });
    this.ctx.end(`Contract judged: ${line}`);
  }

  // ---- helpers ----

  addParty(player) {
    const s = this.s;
    if (s.parties.length >= s.n_parties || s.parties.some((p) => p.slot === player.slot)) {
      return;
    }
    if (!this.ctx.slots().some((slot) => slot.slot === player.slot && slot.kind === "invite")) {
      return;
    }
    s.parties.push({ slot: player.slot, name: player.name });
  }

  maybeStart() {
    const s = this.s;
    if (s.phase !== "waiting" || s.parties.length < s.n_parties) {
      return;
    }
    s.phase = "negotiating";
    this.ctx.post({
      text:
        `The parties are ${this.partyList()}. Any of them may propose terms: data ` +
        '{"propose": {"title": "...", "text": "...", "clauses": [{"id": "a", "text": "...", ' +
        '"obligor": "<slot>", "beneficiary": "<slot>", "due_in_ms": 86400000}]}}.',
      data: {
        type: "start",
        parties: s.parties.map((p) => p.slot),
        names: s.parties.map((p) => p.name),
      },
    });
  }

  clauseIndex(id) {
    const s = this.s;
    if (s.contract === null || typeof id !== "string") {
      return -1;
    }
    return s.contract.terms.clauses.findIndex((c) => c.id === id);
  }

  // Closed to confirmation and evidence: ruled, or its deadline has passed.
  closed(i) {
    const st = this.s.clauses[i];
    return st.ruled || (st.due !== null && this.ctx.now() >= st.due);
  }

  closedReason(i) {
    const st = this.s.clauses[i];
    if (st.ruled) {
      const r = this.s.rulings.find((x) => x.clause === st.id);
      return `Clause ${st.id} is ruled (${r.outcome}, ${r.rule.code}); a ruling never changes.`;
    }
    return `Clause ${st.id}'s deadline passed at ${iso(st.due)}; its ruling follows from the ` +
      "deadline rule.";
  }

  // The witness fetches of clause `i` still pending, that could fulfil it.
  pendingWitness(i) {
    const id = this.s.clauses[i].id;
    return this.s.fetches.filter((f) => f.clause === id && f.qualifying);
  }

  unknownClause(who, id) {
    const ids = this.s.contract.terms.clauses.map((c) => c.id);
    return this.violation(who, "UNKNOWN_CLAUSE",
      `No clause ${JSON.stringify(String(id)).slice(0, 40)}; the clauses are ${ids.join(", ")}.`);
  }

  waitingFor(p) {
    return this.s.parties.map((x) => x.slot).filter((slot) => !p.accepted.some((a) => a.slot === slot));
  }

  partyList() {
    return this.s.parties.map((p) => `${p.name} (${p.slot})`).join(", ");
  }

  name(slot) {
    const party = this.s.parties.find((p) => p.slot === slot);
    return party ? party.name : slot;
  }

  // Tells `slot` privately what was wrong; returns false: nothing changed.
  violation(slot, code, message, extra) {
    this.ctx.post_to(slot, {
      text: `${code}: ${message}`,
      data: Object.assign({ type: "violation", code, message }, extra || {}),
    });
    return false;
  }

  save() {
    this.ctx.set_state(this.s);
  }
}

// ---- parsing and checks ----

// The action in a message body: {kind, value}, {kind: "bad", reason}, or null for chat.
function parseAction(body) {
  const data = body.data;
  if (isObject(data)) {
    const keys = ACTIONS.filter((k) => Object.prototype.hasOwnProperty.call(data, k));
    if (keys.length > 1) {
      return { kind: "bad", reason: `One action per message; this one has ${keys.join(", ")}.` };
    }
    if (keys.length === 1) {
      return { kind: keys[0], value: data[keys[0]] };
    }
  }
  if (typeof body.text !== "string") {
    return null;
  }
  const text = body.text.trim();
  const match = /^(accept|confirm)(?:\s+(\S+))?$/i.exec(text);
  if (match === null) {
    return null;
  }
  return { kind: match[1].toLowerCase(), value: match[2] === undefined ? "" : match[2] };
}

// Checks a proposal against the parties at time `now`: {problems: [str], clauses} with the
// clauses in canonical form when there is no problem.
function checkTerms(p, parties, now) {
  const problems = [];
  if (!isObject(p)) {
    return {
      problems: ['propose takes an object: {"title": ..., "text": ..., "clauses": [...]}'],
      clauses: [],
    };
  }
  for (const key of Object.keys(p)) {
    if (!PROPOSAL_KEYS.includes(key)) {
      problems.push(`unknown key ${JSON.stringify(key).slice(0, 40)} (the keys are title, text, clauses)`);
    }
  }
  if (typeof p.title !== "string" || p.title.trim() === "") {
    problems.push("title must be a non-empty string");
  } else if (utf8Bytes(p.title) > MAX_TITLE_BYTES) {
    problems.push(`title is ${utf8Bytes(p.title)} bytes; at most ${MAX_TITLE_BYTES}`);
  }
  if (typeof p.text !== "string") {
    problems.push("text must be a string (it may be empty)");
  } else if (utf8Bytes(p.text) > MAX_TEXT_BYTES) {
    problems.push(`text is ${utf8Bytes(p.text)} bytes; at most ${MAX_TEXT_BYTES}`);
  }
  const clauses = [];
  if (!Array.isArray(p.clauses) || p.clauses.length === 0) {
    problems.push("clauses must be a non-empty array");
    return { problems, clauses };
  }
  if (p.clauses.length > MAX_CLAUSES) {
    problems.push(`${p.clauses.length} clauses; at most ${MAX_CLAUSES}`);
    return { problems, clauses };
  }
  const seen = [];
  let deadlines = 0;
  p.clauses.forEach((c, k) => {
    const at = `clauses[${k}]`;
    if (!isObject(c)) {
      problems.push(`${at} must be an object`);
      return;
    }
    for (const key of Object.keys(c)) {
      if (!CLAUSE_KEYS.includes(key)) {
        problems.push(`${at}: unknown key ${JSON.stringify(key).slice(0, 40)}`);
      }
    }
    if (typeof c.id !== "string" || !CLAUSE_ID.test(c.id)) {
      problems.push(`${at}.id must be 1 to 32 of a-z, 0-9, _ and -`);
    } else if (seen.includes(c.id)) {
      problems.push(`${at}.id ${c.id} is not unique`);
    } else {
      seen.push(c.id);
    }
    if (typeof c.text !== "string" || c.text.trim() === "") {
      problems.push(`${at}.text must be a non-empty string`);
    } else if (utf8Bytes(c.text) > MAX_CLAUSE_TEXT_BYTES) {
      problems.push(`${at}.text is ${utf8Bytes(c.text)} bytes; at most ${MAX_CLAUSE_TEXT_BYTES}`);
    }
    for (const role of ["obligor", "beneficiary"]) {
      if (typeof c[role] !== "string" || !parties.includes(c[role])) {
        problems.push(`${at}.${role} must be a party's slot (${parties.join(", ")})`);
      }
    }
    if (typeof c.obligor === "string" && c.obligor === c.beneficiary) {
      problems.push(`${at}: obligor and beneficiary must be different parties`);
    }
    const kind = c.kind === undefined ? "other" : c.kind;
    if (!KINDS.includes(kind)) {
      problems.push(`${at}.kind must be "deliver", "pay" or "other"`);
    }
    const hasDeadline = c.deadline_ms !== undefined && c.deadline_ms !== null;
    const hasDueIn = c.due_in_ms !== undefined && c.due_in_ms !== null;
    if (hasDeadline && hasDueIn) {
      problems.push(`${at}: give deadline_ms or due_in_ms, not both`);
    } else if (hasDeadline) {
      if (!Number.isSafeInteger(c.deadline_ms)) {
        problems.push(`${at}.deadline_ms must be an integer (ms since the epoch)`);
      } else if (c.deadline_ms <= now) {
        problems.push(`${at}.deadline_ms ${c.deadline_ms} is not in the future (now is ${now})`);
      } else if (c.deadline_ms > now + YEAR_MS) {
        problems.push(`${at}.deadline_ms is more than 365 days away`);
      }
    } else if (hasDueIn) {
      if (!Number.isSafeInteger(c.due_in_ms) || c.due_in_ms < MIN_DUE_IN_MS || c.due_in_ms > YEAR_MS) {
        problems.push(`${at}.due_in_ms must be an integer from ${MIN_DUE_IN_MS} to ${YEAR_MS}`);
      }
    }
    if (hasDeadline || hasDueIn) {
      deadlines += 1;
    }
    const by = c.fulfilled_by === undefined ? "confirmation" : c.fulfilled_by;
    if (!FULFILLED_BY.includes(by)) {
      problems.push(`${at}.fulfilled_by must be "confirmation", "witness" or "confirmation_or_witness"`);
    }
    const hasWitness = c.witness !== undefined && c.witness !== null;
    let witness = null;
    if (by === "witness" || by === "confirmation_or_witness") {
      if (!hasWitness) {
        problems.push(`${at}.witness is required with fulfilled_by "${by}": {"url": "https://..."}`);
      } else {
        witness = checkWitness(c.witness, at, problems);
      }
    } else if (hasWitness) {
      problems.push(`${at}.witness is only for fulfilled_by "witness" or "confirmation_or_witness"`);
    }
    clauses.push({
      id: c.id,
      text: c.text,
      obligor: c.obligor,
      beneficiary: c.beneficiary,
      kind,
      deadline_ms: hasDeadline ? c.deadline_ms : null,
      due_in_ms: hasDueIn ? c.due_in_ms : null,
      fulfilled_by: by,
      witness,
    });
  });
  if (deadlines > MAX_DEADLINES) {
    problems.push(
      `${deadlines} clauses have deadlines; at most ${MAX_DEADLINES} may (the judge keeps one ` +
      `timer per deadline, and a bot has at most ${MAX_DEADLINES} timers pending)`);
  }
  return { problems, clauses };
}

function checkWitness(w, at, problems) {
  if (!isObject(w)) {
    problems.push(`${at}.witness must be an object {"url", "status", "contains"}`);
    return null;
  }
  for (const key of Object.keys(w)) {
    if (!WITNESS_KEYS.includes(key)) {
      problems.push(`${at}.witness: unknown key ${JSON.stringify(key).slice(0, 40)}`);
    }
  }
  const urlProblem = checkUrl(w.url);
  if (urlProblem !== null) {
    problems.push(`${at}.witness.url ${urlProblem}`);
  }
  const status = w.status === undefined ? null : w.status;
  if (status !== null && (!Number.isSafeInteger(status) || status < 100 || status > 599)) {
    problems.push(`${at}.witness.status must be an integer from 100 to 599`);
  }
  const contains = w.contains === undefined ? null : w.contains;
  if (contains !== null &&
    (typeof contains !== "string" || contains === "" || utf8Bytes(contains) > MAX_CONTAINS_BYTES)) {
    problems.push(`${at}.witness.contains must be a string of 1 to ${MAX_CONTAINS_BYTES} bytes`);
  }
  return { url: w.url, status, contains };
}

// What is wrong with `url` as a URL to fetch, or null.
function checkUrl(url) {
  if (typeof url !== "string") {
    return "must be a string";
  }
  if (!url.startsWith("https://") || url.length <= "https://".length) {
    return "must start with https://";
  }
  if (jsonBytes(url) > MAX_URL_BYTES + 2) {
    return `is more than ${MAX_URL_BYTES} bytes`;
  }
  // The host's rule (Rust's whitespace and control characters): JavaScript's \s lacks U+0085.
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(url)) {
    return "must not contain spaces or control characters";
  }
  return null;
}

function statementProblem(value, kind) {
  const shape = `{"${kind}": {"clause": id, "text": "..."}}`;
  if (!isObject(value)) {
    return `A ${kind} is ${shape}.`;
  }
  const extra = Object.keys(value).filter((k) => k !== "clause" && k !== "text");
  if (extra.length > 0) {
    return `A ${kind} takes only clause and text: ${shape}.`;
  }
  if (typeof value.clause !== "string") {
    return `A ${kind} names a clause: ${shape}.`;
  }
  if (typeof value.text !== "string" || value.text.trim() === "") {
    return `A ${kind} has a non-empty text: ${shape}.`;
  }
  if (jsonBytes(value.text) > MAX_STATEMENT_JSON_BYTES) {
    return `The text is too long: at most ${MAX_STATEMENT_JSON_BYTES - 2} bytes in its JSON form.`;
  }
  return null;
}

// Whether a fetch result shows clause's witness: {matched: true | false | null, why}. null: the
// fetch cannot rule on this clause at all.
function judgeFetch(clause, st, request, result) {
  if (clause.witness === null) {
    return { matched: null, why: "The clause is fulfilled by confirmation only: this is recorded, and rules nothing." };
  }
  if (!request.qualifying) {
    return { matched: false, why: "That is not the clause's witness url: recorded, rules nothing." };
  }
  const w = clause.witness;
  if (result.url !== request.url || !Number.isSafeInteger(result.seq)) {
    return { matched: false, why: "The result does not match the request." };
  }
  if (w.status !== null) {
    if (result.status !== w.status) {
      return { matched: false, why: `The clause asks for status ${w.status}; the answer was ${result.status === null || result.status === undefined ? "none" : result.status}.` };
    }
  } else if (result.ok !== true || !Number.isSafeInteger(result.status) || result.status < 200 || result.status > 299) {
    return { matched: false, why: "The clause asks for a successful answer (2xx); the fetch did not get one." };
  }
  if (w.contains !== null) {
    const body = isObject(result.body) ? result.body : null;
    if (body === null || typeof body.text !== "string" || !body.text.includes(w.contains)) {
      return { matched: false, why: `The body does not contain ${JSON.stringify(w.contains).slice(0, 80)}.` };
    }
  }
  if (!Number.isSafeInteger(result.fetched_at)) {
    return { matched: false, why: "The result has no fetch time." };
  }
  if (st.due !== null && result.fetched_at > st.due) {
    return { matched: false, why: `It was fetched at ${result.fetched_at}, after the deadline ${st.due}.` };
  }
  return { matched: true, why: "It shows the clause's witness." };
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
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

// RFC 8785 for the values terms hold (strings, safe integers, null, arrays, objects): keys
// sorted by UTF-16 code units, JSON.stringify's escapes, no whitespace.
function canonicalJson(value) {
  if (Array.isArray(value)) {
    return "[" + value.map(canonicalJson).join(",") + "]";
  }
  if (isObject(value)) {
    return "{" + Object.keys(value).sort()
      .map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

function utf8Bytes(text) {
  let total = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    total += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return total;
}

function jsonBytes(value) {
  return utf8Bytes(JSON.stringify(value));
}

function ascending(seqs) {
  return [...new Set(seqs)].sort((a, b) => a - b);
}

function iso(ms) {
  return new Date(ms).toISOString();
}
