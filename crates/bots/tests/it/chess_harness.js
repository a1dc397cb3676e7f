// Appended to crates/bots/builtin/chess.js by the chess tests (tests/it/chess.rs): it replaces
// the bot's on_init with a test driver that calls the engine's top-level functions, and saves
// what it found as the state. Nothing here is part of the bot.
//
// params.op:
// - "perft": {fen, depth} -> {nodes}
// - "games": {seed, games, plies, roundtrip_every} -> counts of what random games did, and the
//   first errors found (an empty list when every invariant held).

function harnessPerft(pos, depth) {
  const moves = legalMoves(pos);
  if (depth === 1) {
    return moves.length;
  }
  let nodes = 0;
  for (let i = 0; i < moves.length; i++) {
    const undo = makeMove(pos, moves[i]);
    nodes += harnessPerft(pos, depth - 1);
    unmakeMove(pos, moves[i], undo);
  }
  return nodes;
}

// A board from a FEN's first field, as 64 characters from a1 to h8 ("." for empty), read
// without the engine: board[rank * 8 + file], rank 0 being rank 1.
function harnessBoard(fen) {
  const rows = fen.split(" ")[0].split("/");
  const cells = [];
  for (let r = 7; r >= 0; r--) {
    for (const ch of rows[r]) {
      if (ch >= "1" && ch <= "8") {
        for (let i = 0; i < Number(ch); i++) {
          cells.push(".");
        }
      } else {
        cells.push(ch);
      }
    }
  }
  // rows[7] is rank 1, so cells run from a1 to h8.
  return cells;
}

// Whether the king of `color` ("w" or "b") stands attacked on `board`: a plain scan written
// apart from the engine's attack tables.
function harnessKingAttacked(board, color) {
  const king = color === "w" ? "K" : "k";
  const index = board.indexOf(king);
  const kr = Math.floor(index / 8);
  const kf = index % 8;
  const enemy = (ch) => ch !== "." && (color === "w" ? ch === ch.toLowerCase() : ch === ch.toUpperCase());
  const at = (r, f) => (r < 0 || r > 7 || f < 0 || f > 7 ? null : board[r * 8 + f]);
  const is = (ch, type) => ch !== null && enemy(ch) && ch.toLowerCase() === type;
  const pawnRank = color === "w" ? kr + 1 : kr - 1;
  if (is(at(pawnRank, kf - 1), "p") || is(at(pawnRank, kf + 1), "p")) {
    return true;
  }
  for (const [dr, df] of [[1, 2], [2, 1], [-1, 2], [-2, 1], [1, -2], [2, -1], [-1, -2], [-2, -1]]) {
    if (is(at(kr + dr, kf + df), "n")) {
      return true;
    }
  }
  for (let dr = -1; dr <= 1; dr++) {
    for (let df = -1; df <= 1; df++) {
      if ((dr || df) && is(at(kr + dr, kf + df), "k")) {
        return true;
      }
      if (!dr && !df) {
        continue;
      }
      const slider = dr && df ? "b" : "r";
      for (let step = 1; step < 8; step++) {
        const ch = at(kr + dr * step, kf + df * step);
        if (ch === null) {
          break;
        }
        if (ch !== ".") {
          if (is(ch, slider) || is(ch, "q")) {
            return true;
          }
          break;
        }
      }
    }
  }
  return false;
}

// Dead positions as the rules list them, from the board alone.
function harnessInsufficient(board) {
  const others = [];
  for (let i = 0; i < 64; i++) {
    const ch = board[i];
    if (ch !== "." && ch.toLowerCase() !== "k") {
      others.push([ch.toLowerCase(), (Math.floor(i / 8) + (i % 8)) % 2]);
    }
  }
  if (others.length === 0) {
    return true;
  }
  if (others.length === 1 && (others[0][0] === "b" || others[0][0] === "n")) {
    return true;
  }
  return others.every((o) => o[0] === "b" && o[1] === others[0][1]);
}

function harnessRandom(seed) {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

function harnessGames(params) {
  const random = harnessRandom(params.seed);
  const errors = [];
  const endings = {};
  let plies = 0;
  let roundtrips = 0;
  const fail = (game, ply, what) => {
    if (errors.length < 10) {
      errors.push(`game ${game} ply ${ply}: ${what}`);
    }
  };
  for (let game = 0; game < params.games && errors.length < 10; game++) {
    const pos = parseFen(START_FEN);
    let legal = legalMoves(pos);
    let keys = [repetitionKey(pos, legal)];
    const counts = new Map([[keys[0], 1]]);
    let status = "playing";
    let ply = 0;
    for (; ply < params.plies; ply++) {
      const fen = toFen(pos);
      if (toFen(parseFen(fen)) !== fen) {
        fail(game, ply, `FEN does not round-trip: ${fen}`);
      }
      if (ply % params.roundtrip_every === 0) {
        for (const m of legal) {
          const san = sanOf(pos, m, legal);
          const bySan = findMove(pos, legal, san);
          const byUci = findMove(pos, legal, uciOf(m));
          roundtrips += 1;
          if (bySan.move !== m) {
            fail(game, ply, `SAN ${san} of ${uciOf(m)} reads back as ${JSON.stringify(bySan)} in ${fen}`);
          }
          if (byUci.move !== m) {
            fail(game, ply, `UCI ${uciOf(m)} reads back as ${JSON.stringify(byUci)} in ${fen}`);
          }
        }
      }
      // Prefer captures half of the time, so games reach endgames and their draws.
      const captures = legal.filter((m) => pos.b[moveTo(m)] !== 0 || moveFlag(m) === EN_PASSANT);
      const pool = captures.length && random(2) === 0 ? captures : legal;
      const m = pool[random(pool.length)];
      const mover = "wb"[pos.side];
      const board = harnessBoard(fen);
      const fromName = squareName(moveFrom(m));
      const toName = squareName(moveTo(m));
      const moving = board[(fromName.charCodeAt(1) - 49) * 8 + fromName.charCodeAt(0) - 97];
      const target = board[(toName.charCodeAt(1) - 49) * 8 + toName.charCodeAt(0) - 97];
      const resets = moving.toLowerCase() === "p" || target !== ".";
      const half = pos.half;
      const undo = makeMove(pos, m);
      unmakeMove(pos, m, undo);
      if (toFen(pos) !== fen) {
        fail(game, ply, `unmake of ${uciOf(m)} gives ${toFen(pos)}, not ${fen}`);
      }
      makeMove(pos, m);
      plies += 1;
      const after = toFen(pos);
      const afterBoard = harnessBoard(after);
      if (harnessKingAttacked(afterBoard, mover)) {
        fail(game, ply, `${uciOf(m)} leaves the mover's king in check: ${after}`);
      }
      if (pos.half !== (resets ? 0 : half + 1)) {
        fail(game, ply, `halfmove clock ${pos.half} after ${uciOf(m)} from ${half}`);
      }
      legal = legalMoves(pos);
      if (pos.half === 0) {
        keys = [];
        counts.clear();
      }
      const key = repetitionKey(pos, legal);
      keys.push(key);
      counts.set(key, (counts.get(key) || 0) + 1);
      status = gameStatus(pos, legal, keys);
      const checked = harnessKingAttacked(afterBoard, "wb"[pos.side]);
      let expected;
      if (legal.length === 0) {
        expected = checked ? "checkmate" : "stalemate";
      } else if (harnessInsufficient(afterBoard)) {
        expected = "insufficient_material";
      } else if (counts.get(key) >= 3) {
        expected = "threefold";
      } else if (pos.half >= 100) {
        expected = "fifty_moves";
      } else {
        expected = checked ? "check" : "playing";
      }
      if (status !== expected) {
        fail(game, ply, `status ${status}, expected ${expected}, after ${uciOf(m)}: ${after}`);
      }
      if (status !== "playing" && status !== "check") {
        break;
      }
    }
    const end = status === "playing" || status === "check" ? "unfinished" : status;
    endings[end] = (endings[end] || 0) + 1;
  }
  return { plies, roundtrips, endings, errors };
}

Bot.prototype.on_init = function () {
  const p = this.params;
  if (p.op === "perft") {
    const pos = parseFen(p.fen);
    this.ctx.set_state({ nodes: harnessPerft(pos, p.depth) });
  } else if (p.op === "games") {
    this.ctx.set_state(harnessGames(p));
  } else {
    throw new Error(`unknown op ${p.op}`);
  }
};
