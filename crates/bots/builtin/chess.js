// ChessBot: two players play chess under the full rules; the bot checks every move, draws the
// board after each one and ends the game with its result and PGN.
//
// Params:
// - colors: "join" (default: the first player to join is white) or "random" (seeded).
// - move_timeout_ms: time for each move, in ms (default 60000; 1000 to 86400000). Each move has
//   its own deadline (no chess clock carrying time over): a move post's data.clock.deadline is
//   the moment, in ms since the epoch, by which the side to move must move.
// - on_timeout: "forfeit" (default: the side that ran out of time loses, or draws when the
//   other side has no mating material left) or "random_move" (the bot plays a random legal move
//   for them and the game goes on).
//
// Players: the first two participants in invite slots (those already seated when the bot is
// attached, in seat order, then whoever joins). The game starts when both are in. Others watch;
// their moves get BAD_TURN.
//
// Moving: post the move publicly (or privately to the bot), as text or data:
// - SAN: "e4", "Nf3", "exd5", "Nbd2", "R1e2", "e8=Q" or "e8Q", "O-O" / "0-0", "O-O-O";
//   "+", "#", "!" and "?" are optional.
// - UCI / long algebraic: "e2e4", "e7e8q", "e2-e4"; castling is the king's move, "e1g1".
// - "move e4" works too, and data {"move": "e2e4"}.
// - "resign" or {"action": "resign"}: you lose (at any time, also out of turn).
// - "draw" or {"action": "draw"}: offer a draw (or accept the opponent's offer); "accept" or
//   {"action": "accept"} accepts it. An offer lapses when the opponent moves instead.
// Which messages count: data with "move" or "action"; private messages to the bot; public text
// that starts with "move", is "resign"/"draw"/"accept", or has the shape of a SAN or UCI move
// (a leading move number like "12." or "12..." is allowed). Other messages are chat and ignored.
//
// Rules: all of chess: castling (rights tracked, never out of, through or into check),
// en passant, promotion to Q, R, B or N, check, checkmate and stalemate. Draws are declared
// automatically, without a claim: threefold repetition (same position, side to move, castling
// rights and en passant possibility), the 50-move rule (100 plies without a capture or a pawn
// move), and insufficient material (K v K, K+B v K, K+N v K, and kings with bishops all on
// squares of one colour). A player who leaves the channel mid-game forfeits.
//
// Violations go privately to whoever made them and change nothing: NOT_STARTED (fewer than two
// players), BAD_TURN (not your turn, or not a player), BAD_MOVE (illegal, ambiguous or
// unreadable; the hint lists the legal moves), GAME_OVER (after the end).
//
// Posts: after every move a public post with the SAN, the board (ranks 8 to 1, files a to h,
// uppercase white, lowercase black, "." empty) and whose turn it is; its data is
// {type: "move", san, uci, ply, by, fen, pgn, turn, next, status, clock, legal}. status is
// "playing", "check", "checkmate", "stalemate", "threefold", "fifty_moves",
// "insufficient_material". The first post, when the bot is attached, is {type: "rules", colors,
// move_timeout_ms, on_timeout}; the game's first is {type: "start", white, black, fen, turn, next,
// clock, legal}. The last post is {type: "result", result ("1-0", "0-1", "1/2-1/2"), reason,
// detail, winner, loser, pgn, fen}, and the bot ends its run (ctx.end). reason is a code:
// "checkmate", "resigned", "timeout" (a draw when the opponent cannot mate), "left", "agreement",
// or the drawn status ("stalemate", "threefold", "fifty_moves", "insufficient_material"); detail
// says it in words, with names.

const FILES = "abcdefgh";
const PIECE_CHARS = ".PNBRQK..pnbrqk";
const LETTERS = "  NBRQK";
const PAWN = 1;
const KNIGHT = 2;
const BISHOP = 3;
const ROOK = 4;
const QUEEN = 5;
const KING = 6;
const WHITE = 0;
const BLACK = 1;
const KNIGHT_STEPS = [33, 31, 18, 14, -14, -18, -31, -33];
const KING_STEPS = [17, 16, 15, 1, -1, -15, -16, -17];
const DIAGONALS = [17, 15, -15, -17];
const LINES = [16, 1, -1, -16];
// Move flags, in bits 17 and up of a move; from is bits 0-6, to 7-13, promotion piece 14-16.
const DOUBLE_PUSH = 1;
const EN_PASSANT = 2;
const CASTLE = 3;
// Castling rights.
const WK = 1;
const WQ = 2;
const BK = 4;
const BQ = 8;
// Rights kept when a piece moves from or to a square (0x88 squares: rank * 16 + file).
const CASTLE_MASK = new Int8Array(128).fill(15);
CASTLE_MASK[0x04] = 15 & ~(WK | WQ);
CASTLE_MASK[0x00] = 15 & ~WQ;
CASTLE_MASK[0x07] = 15 & ~WK;
CASTLE_MASK[0x74] = 15 & ~(BK | BQ);
CASTLE_MASK[0x70] = 15 & ~BQ;
CASTLE_MASK[0x77] = 15 & ~BK;
const START_FEN = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1";
const COLOR_NAMES = ["white", "black"];
const STATUS_TEXT = {
  checkmate: "checkmate",
  stalemate: "stalemate",
  threefold: "threefold repetition",
  fifty_moves: "the 50-move rule",
  insufficient_material: "insufficient material",
};
const MAX_TIMEOUT_MS = 86400000;
const MAX_PGN_IN_POST = 12000;

// ---- The engine: a 0x88 board, moves as integers, make and unmake. ----

function squareName(sq) {
  return FILES[sq & 7] + ((sq >> 4) + 1);
}

function squareIndex(name) {
  return (name.charCodeAt(1) - 49) * 16 + (name.charCodeAt(0) - 97);
}

function moveFrom(m) {
  return m & 127;
}

function moveTo(m) {
  return (m >> 7) & 127;
}

function movePromo(m) {
  return (m >> 14) & 7;
}

function moveFlag(m) {
  return m >> 17;
}

// A position from FEN, or null when the text is not a FEN this engine can play from.
function parseFen(fen) {
  const parts = String(fen).trim().split(/\s+/);
  if (parts.length < 4) {
    return null;
  }
  const pos = {
    b: new Int8Array(128),
    side: WHITE,
    castle: 0,
    ep: -1,
    half: 0,
    full: 1,
    kings: [-1, -1],
  };
  const ranks = parts[0].split("/");
  if (ranks.length !== 8) {
    return null;
  }
  for (let r = 0; r < 8; r++) {
    let file = 0;
    for (const ch of ranks[r]) {
      if (ch >= "1" && ch <= "8") {
        file += Number(ch);
      } else {
        const piece = PIECE_CHARS.indexOf(ch);
        if (piece <= 0 || ch === "." || file > 7) {
          return null;
        }
        const sq = (7 - r) * 16 + file;
        pos.b[sq] = piece;
        if ((piece & 7) === KING) {
          if (pos.kings[piece >> 3] !== -1) {
            return null;
          }
          pos.kings[piece >> 3] = sq;
        }
        file += 1;
      }
    }
    if (file !== 8) {
      return null;
    }
  }
  if (pos.kings[0] < 0 || pos.kings[1] < 0) {
    return null;
  }
  if (parts[1] !== "w" && parts[1] !== "b") {
    return null;
  }
  pos.side = parts[1] === "w" ? WHITE : BLACK;
  if (parts[2] !== "-") {
    for (const ch of parts[2]) {
      const bit = "KQkq".indexOf(ch);
      if (bit < 0) {
        return null;
      }
      pos.castle |= 1 << bit;
    }
  }
  if (parts[3] !== "-") {
    if (!/^[a-h][36]$/.test(parts[3])) {
      return null;
    }
    pos.ep = squareIndex(parts[3]);
  }
  pos.half = parts.length > 4 ? Number(parts[4]) : 0;
  pos.full = parts.length > 5 ? Number(parts[5]) : 1;
  if (!Number.isSafeInteger(pos.half) || !Number.isSafeInteger(pos.full) || pos.half < 0) {
    return null;
  }
  return pos;
}

function boardFen(pos) {
  let out = "";
  for (let r = 7; r >= 0; r--) {
    let empty = 0;
    for (let f = 0; f < 8; f++) {
      const piece = pos.b[r * 16 + f];
      if (piece === 0) {
        empty += 1;
      } else {
        if (empty) {
          out += empty;
          empty = 0;
        }
        out += PIECE_CHARS[piece];
      }
    }
    if (empty) {
      out += empty;
    }
    if (r > 0) {
      out += "/";
    }
  }
  return out;
}

function castleFen(pos) {
  let out = "";
  for (let bit = 0; bit < 4; bit++) {
    if (pos.castle & (1 << bit)) {
      out += "KQkq"[bit];
    }
  }
  return out || "-";
}

function toFen(pos) {
  const ep = pos.ep < 0 ? "-" : squareName(pos.ep);
  return `${boardFen(pos)} ${"wb"[pos.side]} ${castleFen(pos)} ${ep} ${pos.half} ${pos.full}`;
}

// Whether side `by` attacks square `sq`.
function attacked(pos, sq, by) {
  const b = pos.b;
  let s;
  if (by === WHITE) {
    s = sq - 15;
    if (!(s & 0x88) && b[s] === PAWN) {
      return true;
    }
    s = sq - 17;
    if (!(s & 0x88) && b[s] === PAWN) {
      return true;
    }
  } else {
    s = sq + 15;
    if (!(s & 0x88) && b[s] === (PAWN | 8)) {
      return true;
    }
    s = sq + 17;
    if (!(s & 0x88) && b[s] === (PAWN | 8)) {
      return true;
    }
  }
  const c = by << 3;
  const knight = KNIGHT | c;
  const king = KING | c;
  for (let i = 0; i < 8; i++) {
    s = sq + KNIGHT_STEPS[i];
    if (!(s & 0x88) && b[s] === knight) {
      return true;
    }
    s = sq + KING_STEPS[i];
    if (!(s & 0x88) && b[s] === king) {
      return true;
    }
  }
  const queen = QUEEN | c;
  for (let i = 0; i < 4; i++) {
    let d = DIAGONALS[i];
    for (s = sq + d; !(s & 0x88); s += d) {
      const p = b[s];
      if (p) {
        if (p === queen || p === (BISHOP | c)) {
          return true;
        }
        break;
      }
    }
    d = LINES[i];
    for (s = sq + d; !(s & 0x88); s += d) {
      const p = b[s];
      if (p) {
        if (p === queen || p === (ROOK | c)) {
          return true;
        }
        break;
      }
    }
  }
  return false;
}

function inCheck(pos) {
  return attacked(pos, pos.kings[pos.side], pos.side ^ 1);
}

function pushPawnMove(out, from, to, flag) {
  const rank = to >> 4;
  if (rank === 0 || rank === 7) {
    for (let promo = QUEEN; promo >= KNIGHT; promo--) {
      out.push(from | (to << 7) | (promo << 14));
    }
  } else {
    out.push(from | (to << 7) | (flag << 17));
  }
}

function slide(pos, out, from, steps, us) {
  const b = pos.b;
  for (let i = 0; i < 4; i++) {
    const d = steps[i];
    for (let to = from + d; !(to & 0x88); to += d) {
      const p = b[to];
      if (p === 0) {
        out.push(from | (to << 7));
      } else {
        if (p >> 3 !== us) {
          out.push(from | (to << 7));
        }
        break;
      }
    }
  }
}

// Moves that follow the pieces' rules but may leave the mover's king in check.
function pseudoMoves(pos) {
  const b = pos.b;
  const us = pos.side;
  const out = [];
  const forward = us === WHITE ? 16 : -16;
  const startRank = us === WHITE ? 1 : 6;
  for (let sq = 0; sq < 120; sq++) {
    if (sq & 0x88) {
      sq += 7;
      continue;
    }
    const p = b[sq];
    if (p === 0 || p >> 3 !== us) {
      continue;
    }
    const type = p & 7;
    if (type === PAWN) {
      const to = sq + forward;
      if (b[to] === 0) {
        pushPawnMove(out, sq, to, 0);
        if (sq >> 4 === startRank && b[to + forward] === 0) {
          out.push(sq | ((to + forward) << 7) | (DOUBLE_PUSH << 17));
        }
      }
      for (let side = -1; side <= 1; side += 2) {
        const target = to + side;
        if (target & 0x88) {
          continue;
        }
        const q = b[target];
        if (q !== 0 && q >> 3 !== us) {
          pushPawnMove(out, sq, target, 0);
        } else if (target === pos.ep && q === 0) {
          out.push(sq | (target << 7) | (EN_PASSANT << 17));
        }
      }
    } else if (type === KNIGHT || type === KING) {
      const steps = type === KNIGHT ? KNIGHT_STEPS : KING_STEPS;
      for (let i = 0; i < 8; i++) {
        const to = sq + steps[i];
        if (!(to & 0x88)) {
          const q = b[to];
          if (q === 0 || q >> 3 !== us) {
            out.push(sq | (to << 7));
          }
        }
      }
    } else {
      if (type !== ROOK) {
        slide(pos, out, sq, DIAGONALS, us);
      }
      if (type !== BISHOP) {
        slide(pos, out, sq, LINES, us);
      }
    }
  }
  // Castling: the squares between king and rook empty, the king not in check and not passing
  // through an attacked square (its destination is checked with every other move's).
  const them = us ^ 1;
  const home = us === WHITE ? 0 : 0x70;
  const king = KING | (us << 3);
  const rook = ROOK | (us << 3);
  const rights = us === WHITE ? pos.castle : pos.castle >> 2;
  if (rights & 3 && b[home + 4] === king && !attacked(pos, home + 4, them)) {
    if (
      rights & 1 &&
      b[home + 7] === rook &&
      b[home + 5] === 0 &&
      b[home + 6] === 0 &&
      !attacked(pos, home + 5, them)
    ) {
      out.push((home + 4) | ((home + 6) << 7) | (CASTLE << 17));
    }
    if (
      rights & 2 &&
      b[home] === rook &&
      b[home + 3] === 0 &&
      b[home + 2] === 0 &&
      b[home + 1] === 0 &&
      !attacked(pos, home + 3, them)
    ) {
      out.push((home + 4) | ((home + 2) << 7) | (CASTLE << 17));
    }
  }
  return out;
}

// Plays `m` on `pos` in place; returns what unmakeMove needs to take it back.
function makeMove(pos, m) {
  const b = pos.b;
  const from = m & 127;
  const to = (m >> 7) & 127;
  const promo = (m >> 14) & 7;
  const flag = m >> 17;
  const us = pos.side;
  const piece = b[from];
  const captured = b[to];
  const undo = captured | (pos.castle << 4) | ((pos.ep + 1) << 8) | (pos.half << 16);
  b[to] = promo ? promo | (us << 3) : piece;
  b[from] = 0;
  if (flag === EN_PASSANT) {
    b[to + (us === WHITE ? -16 : 16)] = 0;
  } else if (flag === CASTLE) {
    if (to > from) {
      b[from + 1] = b[from + 3];
      b[from + 3] = 0;
    } else {
      b[from - 1] = b[from - 4];
      b[from - 4] = 0;
    }
  }
  if ((piece & 7) === KING) {
    pos.kings[us] = to;
  }
  pos.castle &= CASTLE_MASK[from] & CASTLE_MASK[to];
  pos.ep = flag === DOUBLE_PUSH ? (from + to) >> 1 : -1;
  pos.half = (piece & 7) === PAWN || captured ? 0 : pos.half + 1;
  if (us === BLACK) {
    pos.full += 1;
  }
  pos.side = us ^ 1;
  return undo;
}

function unmakeMove(pos, m, undo) {
  const b = pos.b;
  const from = m & 127;
  const to = (m >> 7) & 127;
  const flag = m >> 17;
  const us = pos.side ^ 1;
  pos.side = us;
  if (us === BLACK) {
    pos.full -= 1;
  }
  const piece = (m >> 14) & 7 ? PAWN | (us << 3) : b[to];
  b[from] = piece;
  b[to] = undo & 15;
  if (flag === EN_PASSANT) {
    b[to + (us === WHITE ? -16 : 16)] = PAWN | ((us ^ 1) << 3);
  } else if (flag === CASTLE) {
    if (to > from) {
      b[from + 3] = b[from + 1];
      b[from + 1] = 0;
    } else {
      b[from - 4] = b[from - 1];
      b[from - 1] = 0;
    }
  }
  if ((piece & 7) === KING) {
    pos.kings[us] = from;
  }
  pos.castle = (undo >> 4) & 15;
  pos.ep = ((undo >> 8) & 255) - 1;
  pos.half = undo >>> 16;
}

function legalMoves(pos) {
  const us = pos.side;
  const them = us ^ 1;
  const moves = pseudoMoves(pos);
  const legal = [];
  for (let i = 0; i < moves.length; i++) {
    const m = moves[i];
    const undo = makeMove(pos, m);
    if (!attacked(pos, pos.kings[us], them)) {
      legal.push(m);
    }
    unmakeMove(pos, m, undo);
  }
  return legal;
}

function uciOf(m) {
  const promo = movePromo(m);
  return squareName(moveFrom(m)) + squareName(moveTo(m)) + (promo ? " pnbrq"[promo] : "");
}

// The SAN of `m`, one of `legal` (the legal moves of `pos`), with "+" or "#".
function sanOf(pos, m, legal) {
  const from = moveFrom(m);
  const to = moveTo(m);
  const piece = pos.b[from];
  const type = piece & 7;
  let san;
  if (moveFlag(m) === CASTLE) {
    san = to > from ? "O-O" : "O-O-O";
  } else if (type === PAWN) {
    san = (from & 7) === (to & 7) ? squareName(to) : `${FILES[from & 7]}x${squareName(to)}`;
    if (movePromo(m)) {
      san += `=${LETTERS[movePromo(m)]}`;
    }
  } else {
    let sameFile = false;
    let sameRank = false;
    let others = false;
    for (let i = 0; i < legal.length; i++) {
      const other = legal[i];
      const otherFrom = moveFrom(other);
      if (moveTo(other) === to && otherFrom !== from && pos.b[otherFrom] === piece) {
        others = true;
        sameFile = sameFile || (otherFrom & 7) === (from & 7);
        sameRank = sameRank || otherFrom >> 4 === from >> 4;
      }
    }
    san = LETTERS[type];
    if (others) {
      if (!sameFile) {
        san += FILES[from & 7];
      } else if (!sameRank) {
        san += (from >> 4) + 1;
      } else {
        san += squareName(from);
      }
    }
    san += (pos.b[to] ? "x" : "") + squareName(to);
  }
  const undo = makeMove(pos, m);
  if (inCheck(pos)) {
    san += legalMoves(pos).length ? "+" : "#";
  }
  unmakeMove(pos, m, undo);
  return san;
}

const UCI_SHAPE = /^([a-h][1-8])[-x]?([a-h][1-8])=?([qrbnQRBN])?$/;
const CASTLE_SHAPE = /^([0oO])-\1(-\1)?$/;
const PIECE_SHAPE = /^([KQRBNkqrbn])([a-h])?([1-8])?[x:]?([a-h][1-8])$/;
const PAWN_SHAPE = /^([a-h])(?:[x:]?([a-h]))?([1-8])(?:=?([QRBNqrbn]))?$/;

// A move's text without decorations: "12... Nxe5+!" is "Nxe5".
function cleanMove(text) {
  return text
    .trim()
    .replace(/^\d+\s*\.+\s*/, "")
    .replace(/\s*e\.?p\.?$/i, "")
    .replace(/[+#!?]+$/, "");
}

function looksLikeMove(text) {
  const s = cleanMove(text);
  return (
    UCI_SHAPE.test(s) || CASTLE_SHAPE.test(s) || PIECE_SHAPE.test(s) || PAWN_SHAPE.test(s)
  );
}

// The legal move that `text` (SAN or UCI) names: {move} or {error}.
function findMove(pos, legal, text) {
  const s = cleanMove(text);
  let match = UCI_SHAPE.exec(s);
  if (match) {
    const from = squareIndex(match[1]);
    const to = squareIndex(match[2]);
    const hits = legal.filter((m) => moveFrom(m) === from && moveTo(m) === to);
    return pick(pos, legal, hits, match[3], s);
  }
  match = CASTLE_SHAPE.exec(s);
  if (match) {
    const long = match[2] !== undefined;
    const hits = legal.filter(
      (m) => moveFlag(m) === CASTLE && (moveTo(m) & 7) === (long ? 2 : 6),
    );
    return pick(pos, legal, hits, undefined, s);
  }
  const pieceMatch = PIECE_SHAPE.exec(s);
  const pawnMatch = PAWN_SHAPE.exec(s);
  let found = null;
  // "bxc4" is a pawn's move if a pawn can make it, and a bishop's otherwise.
  if (pawnMatch && (!pieceMatch || s[0] !== "B")) {
    const fromFile = pawnMatch[1].charCodeAt(0) - 97;
    const to = squareIndex((pawnMatch[2] || pawnMatch[1]) + pawnMatch[3]);
    const hits = legal.filter(
      (m) =>
        (pos.b[moveFrom(m)] & 7) === PAWN && moveTo(m) === to && (moveFrom(m) & 7) === fromFile,
    );
    found = pick(pos, legal, hits, pawnMatch[4], s);
    if (hits.length || !pieceMatch) {
      return found;
    }
  }
  if (pieceMatch) {
    const type = LETTERS.indexOf(pieceMatch[1].toUpperCase());
    const to = squareIndex(pieceMatch[4]);
    const file = pieceMatch[2] === undefined ? -1 : pieceMatch[2].charCodeAt(0) - 97;
    const rank = pieceMatch[3] === undefined ? -1 : Number(pieceMatch[3]) - 1;
    const hits = legal.filter((m) => {
      const from = moveFrom(m);
      return (
        moveTo(m) === to &&
        moveFlag(m) !== CASTLE &&
        (pos.b[from] & 7) === type &&
        (file < 0 || (from & 7) === file) &&
        (rank < 0 || from >> 4 === rank)
      );
    });
    const result = pick(pos, legal, hits, undefined, s);
    return result.move === undefined && found ? found : result;
  }
  return { error: `"${text.trim()}" is not a move in SAN ("Nf3", "exd5", "O-O", "e8=Q") or UCI ("g1f3", "e7e8q").` };
}

function pick(pos, legal, hits, promoLetter, s) {
  if (hits.length && movePromo(hits[0])) {
    if (promoLetter === undefined) {
      return { error: `${s} promotes a pawn: say to what, e.g. ${s}=Q (or =R, =B, =N).` };
    }
    const promo = LETTERS.indexOf(promoLetter.toUpperCase());
    hits = hits.filter((m) => movePromo(m) === promo);
  } else if (promoLetter !== undefined && hits.length) {
    return { error: `${s}: only a pawn reaching the last rank promotes.` };
  }
  if (hits.length === 1) {
    return { move: hits[0] };
  }
  if (hits.length > 1) {
    const names = hits.map((m) => sanOf(pos, m, legal)).join(", ");
    return { error: `${s} is ambiguous: ${names}.` };
  }
  return { error: `${s} is not a legal move here.` };
}

// Whether the pieces left can never give mate: K v K, K+minor v K, bishops on one colour.
function insufficientMaterial(pos) {
  let minors = 0;
  let knights = 0;
  let bishopColors = 0;
  for (let sq = 0; sq < 120; sq++) {
    if (sq & 0x88) {
      sq += 7;
      continue;
    }
    const type = pos.b[sq] & 7;
    if (type === 0 || type === KING) {
      continue;
    }
    if (type === PAWN || type === ROOK || type === QUEEN) {
      return false;
    }
    minors += 1;
    if (type === KNIGHT) {
      knights += 1;
    } else {
      bishopColors |= 1 << (((sq >> 4) + sq) & 1);
    }
  }
  return minors <= 1 || (knights === 0 && bishopColors !== 3);
}

// The position for repetition: pieces, side to move, castling rights, and the en passant
// square only when an en passant capture is legal.
function repetitionKey(pos, legal) {
  const ep = legal.some((m) => moveFlag(m) === EN_PASSANT) ? squareName(pos.ep) : "-";
  return `${boardFen(pos)} ${"wb"[pos.side]} ${castleFen(pos)} ${ep}`;
}

// How the game stands after a move; `keys` are the repetition keys since the last capture or
// pawn move, the current position's included.
function gameStatus(pos, legal, keys) {
  if (legal.length === 0) {
    return inCheck(pos) ? "checkmate" : "stalemate";
  }
  if (insufficientMaterial(pos)) {
    return "insufficient_material";
  }
  const key = keys[keys.length - 1];
  let seen = 0;
  for (let i = 0; i < keys.length; i++) {
    if (keys[i] === key) {
      seen += 1;
    }
  }
  if (seen >= 3) {
    return "threefold";
  }
  if (pos.half >= 100) {
    return "fifty_moves";
  }
  return inCheck(pos) ? "check" : "playing";
}

// Whether `side` has more than a bare king, or a king and one minor piece.
function canMate(pos, side) {
  let minors = 0;
  for (let sq = 0; sq < 120; sq++) {
    if (sq & 0x88) {
      sq += 7;
      continue;
    }
    const p = pos.b[sq];
    if (p === 0 || p >> 3 !== side || (p & 7) === KING) {
      continue;
    }
    const type = p & 7;
    if (type !== KNIGHT && type !== BISHOP) {
      return true;
    }
    minors += 1;
  }
  return minors > 1;
}

function drawBoard(pos) {
  const lines = ["  a b c d e f g h"];
  for (let r = 7; r >= 0; r--) {
    let line = `${r + 1}`;
    for (let f = 0; f < 8; f++) {
      line += ` ${PIECE_CHARS[pos.b[r * 16 + f]]}`;
    }
    lines.push(`${line} ${r + 1}`);
  }
  lines.push("  a b c d e f g h");
  return lines.join("\n");
}

// ---- The referee. ----

class Bot {
  constructor(ctx, params) {
    this.ctx = ctx;
    this.params = params === null || typeof params !== "object" ? {} : params;
    this.game = ctx.get_state();
  }

  on_init() {
    const colors = this.params.colors === undefined ? "join" : this.params.colors;
    if (colors !== "join" && colors !== "random") {
      throw new Error('params.colors must be "join" or "random"');
    }
    const timeout =
      this.params.move_timeout_ms === undefined ? 60000 : this.params.move_timeout_ms;
    if (!Number.isSafeInteger(timeout) || timeout < 1000 || timeout > MAX_TIMEOUT_MS) {
      throw new Error(`params.move_timeout_ms must be an integer from 1000 to ${MAX_TIMEOUT_MS}`);
    }
    const onTimeout = this.params.on_timeout === undefined ? "forfeit" : this.params.on_timeout;
    if (onTimeout !== "forfeit" && onTimeout !== "random_move") {
      throw new Error('params.on_timeout must be "forfeit" or "random_move"');
    }
    this.game = {
      phase: "waiting",
      colors,
      timeout,
      on_timeout: onTimeout,
      players: [],
      white: null,
      black: null,
      fen: START_FEN,
      sans: [],
      keys: [],
      deadline: null,
      draw_offer: null,
      started: null,
      result: null,
      detail: null,
    };
    this.ctx.post({
      text:
        "ChessBot: a game of chess for the first two players. Colours: " +
        (colors === "join" ? "the first to join plays white" : "drawn at random") +
        `. ${timeout / 1000} s per move (then: ${onTimeout.replace("_", " ")}). ` +
        'Move in SAN or UCI ("e4", "Nf3", "O-O", "e7e8q"); "resign", "draw" and "accept" ' +
        "work too. get_bot_code shows the full rules.",
      data: { type: "rules", colors, move_timeout_ms: timeout, on_timeout: onTimeout },
    });
    for (const player of this.ctx.players()) {
      this.addPlayer(player);
    }
    this.maybeStart();
    this.save();
  }

  on_join(player) {
    if (!this.game || this.game.phase !== "waiting") {
      this.renamePlayer(player);
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
    if (game.phase === "waiting") {
      game.players = game.players.filter((p) => p.slot !== player.slot);
      this.save();
      return;
    }
    const side = this.sideOf(player.slot);
    if (side < 0) {
      return;
    }
    const name = game[COLOR_NAMES[side]].name;
    this.finish(side === WHITE ? "0-1" : "1-0", "left", `${name} (${COLOR_NAMES[side]}) left the game`);
    this.save();
  }

  on_timer(tag) {
    const game = this.game;
    if (tag !== "turn" || !game || game.phase !== "playing" || this.ctx.now() < game.deadline) {
      return;
    }
    const pos = parseFen(game.fen);
    const side = pos.side;
    const player = game[COLOR_NAMES[side]];
    if (game.on_timeout === "random_move") {
      const legal = legalMoves(pos);
      const m = legal[this.ctx.random_int(0, legal.length - 1)];
      this.play(pos, legal, m, `${player.name} ran out of time; the bot played for them`);
    } else if (canMate(pos, side ^ 1)) {
      this.finish(side === WHITE ? "0-1" : "1-0", "timeout", `${player.name} (${COLOR_NAMES[side]}) ran out of time`);
    } else {
      this.finish(
        "1/2-1/2",
        "timeout",
        `${player.name} (${COLOR_NAMES[side]}) ran out of time, but the opponent cannot mate`,
      );
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
    const command = parseCommand(msg.body, toBot);
    if (command === null) {
      return;
    }
    if (game.phase === "over") {
      return this.violation(msg.sender, "GAME_OVER", `The game is over: ${game.result}, ${game.detail}.`);
    }
    if (game.phase === "waiting") {
      return this.violation(
        msg.sender,
        "NOT_STARTED",
        `The game starts when two players are in (${game.players.length} so far).`,
      );
    }
    const side = this.sideOf(msg.sender);
    if (side < 0) {
      return this.violation(msg.sender, "BAD_TURN", "You are not a player in this game.");
    }
    const me = game[COLOR_NAMES[side]];
    if (command.kind === "resign") {
      this.finish(side === WHITE ? "0-1" : "1-0", "resigned", `${me.name} (${COLOR_NAMES[side]}) resigned`);
      return this.save();
    }
    if (command.kind === "draw" || command.kind === "accept") {
      return this.drawOffer(side, command.kind);
    }
    if (command.kind === "bad") {
      return this.violation(msg.sender, "BAD_MOVE", command.reason);
    }
    const pos = parseFen(game.fen);
    if (pos.side !== side) {
      const other = game[COLOR_NAMES[side ^ 1]];
      return this.violation(msg.sender, "BAD_TURN", `It is ${other.name}'s turn (${COLOR_NAMES[side ^ 1]}), not yours.`);
    }
    const legal = legalMoves(pos);
    const found = findMove(pos, legal, command.move);
    if (found.move === undefined) {
      const moves = legal.map((m) => sanOf(pos, m, legal)).join(" ");
      return this.violation(msg.sender, "BAD_MOVE", `${found.error} Legal moves: ${moves}.`);
    }
    this.play(pos, legal, found.move, null);
    this.save();
  }

  // Plays `m` for the side to move, posts it, and ends the game if the move did.
  play(pos, legal, m, note) {
    const game = this.game;
    const side = pos.side;
    const san = sanOf(pos, m, legal);
    const uci = uciOf(m);
    makeMove(pos, m);
    const next = legalMoves(pos);
    if (pos.half === 0) {
      game.keys = [];
    }
    game.keys.push(repetitionKey(pos, next));
    const status = gameStatus(pos, next, game.keys);
    game.sans.push(san);
    game.fen = toFen(pos);
    if (game.draw_offer !== null && game.draw_offer !== side) {
      game.draw_offer = null;
    }
    const over = status !== "playing" && status !== "check";
    const player = game[COLOR_NAMES[side]];
    const toMove = game[COLOR_NAMES[pos.side]];
    const ply = game.sans.length;
    const number = `${Math.ceil(ply / 2)}${side === WHITE ? "." : "..."}`;
    let text = `${note ? `${note}: ` : ""}${player.name} (${COLOR_NAMES[side]}) played ${number} ${san}.\n${drawBoard(pos)}\n`;
    let legalSans = [];
    if (over) {
      text += `Game over: ${STATUS_TEXT[status]}.`;
    } else {
      this.armClock();
      legalSans = next.map((mv) => sanOf(pos, mv, next));
      text +=
        `${status === "check" ? "Check! " : ""}${COLOR_NAMES[pos.side]} to move: ${toMove.name}, ` +
        `within ${game.timeout / 1000} s.\nLegal moves: ${legalSans.join(" ")}`;
    }
    const pgn = this.pgn(over ? resultOf(status, side) : "*");
    this.ctx.post({
      text,
      data: {
        type: "move",
        san,
        uci,
        ply,
        by: player.slot,
        fen: game.fen,
        pgn: pgn.length <= MAX_PGN_IN_POST ? pgn : null,
        turn: COLOR_NAMES[pos.side],
        next: over ? null : toMove.slot,
        status,
        clock: over ? null : this.clock(),
        legal: legalSans,
        random: note !== null,
      },
    });
    if (over) {
      const result = resultOf(status, side);
      const detail =
        status === "checkmate"
          ? `${player.name} (${COLOR_NAMES[side]}) mates`
          : `draw by ${STATUS_TEXT[status]}`;
      this.finish(result, status, detail);
    }
  }

  drawOffer(side, kind) {
    const game = this.game;
    const me = game[COLOR_NAMES[side]];
    const other = game[COLOR_NAMES[side ^ 1]];
    if (game.draw_offer === (side ^ 1)) {
      this.finish("1/2-1/2", "agreement", `draw agreed (${me.name} accepted ${other.name}'s offer)`);
      return this.save();
    }
    if (kind === "accept") {
      return this.violation(me.slot, "BAD_MOVE", `${other.name} has not offered a draw.`);
    }
    if (game.draw_offer === side) {
      return this.violation(me.slot, "BAD_MOVE", "You already offered a draw.");
    }
    game.draw_offer = side;
    this.ctx.post({
      text: `${me.name} (${COLOR_NAMES[side]}) offers a draw. ${other.name}: "accept" to agree, or move to decline.`,
      data: { type: "draw_offer", by: me.slot, to: other.slot },
    });
    this.save();
  }

  armClock() {
    const game = this.game;
    game.deadline = this.ctx.now() + game.timeout;
    this.ctx.set_timer(game.timeout, "turn");
  }

  clock() {
    const game = this.game;
    return { deadline: game.deadline, move_timeout_ms: game.timeout, on_timeout: game.on_timeout };
  }

  pgn(result) {
    const game = this.game;
    const date = new Date(game.started === null ? this.ctx.now() : game.started);
    const pad = (n) => String(n).padStart(2, "0");
    const day = `${date.getUTCFullYear()}.${pad(date.getUTCMonth() + 1)}.${pad(date.getUTCDate())}`;
    const tag = (name, value) => `[${name} "${String(value).replace(/[\\"]/g, "\\$&")}"]\n`;
    let out =
      tag("Event", "MCP Multiplayer chess") +
      tag("Site", `channel ${this.ctx.channel_id}`) +
      tag("Date", day) +
      tag("Round", "-") +
      tag("White", game.white.name) +
      tag("Black", game.black.name) +
      tag("Result", result) +
      "\n";
    let line = "";
    for (let i = 0; i < game.sans.length; i++) {
      line += (i % 2 === 0 ? `${i / 2 + 1}. ` : "") + game.sans[i] + " ";
    }
    return out + line + result;
  }

  addPlayer(player) {
    const game = this.game;
    if (game.players.length >= 2 || !this.isInviteSlot(player.slot)) {
      return;
    }
    const known = game.players.find((p) => p.slot === player.slot);
    if (known) {
      known.name = player.name;
      return;
    }
    game.players.push({ slot: player.slot, name: player.name });
  }

  renamePlayer(player) {
    const game = this.game;
    if (!game || game.phase !== "playing") {
      return;
    }
    const side = this.sideOf(player.slot);
    if (side >= 0 && game[COLOR_NAMES[side]].name !== player.name) {
      game[COLOR_NAMES[side]].name = player.name;
      this.save();
    }
  }

  isInviteSlot(slot) {
    return this.ctx.slots().some((s) => s.slot === slot && s.kind === "invite");
  }

  sideOf(slot) {
    const game = this.game;
    if (game.white && game.white.slot === slot) {
      return WHITE;
    }
    if (game.black && game.black.slot === slot) {
      return BLACK;
    }
    return -1;
  }

  maybeStart() {
    const game = this.game;
    if (game.phase !== "waiting" || game.players.length < 2) {
      return;
    }
    const swap = game.colors === "random" && this.ctx.random_int(0, 1) === 1;
    game.white = game.players[swap ? 1 : 0];
    game.black = game.players[swap ? 0 : 1];
    game.phase = "playing";
    game.started = this.ctx.now();
    const pos = parseFen(game.fen);
    const legal = legalMoves(pos);
    game.keys = [repetitionKey(pos, legal)];
    this.armClock();
    const legalSans = legal.map((m) => sanOf(pos, m, legal));
    this.ctx.post({
      text:
        `Game on! White: ${game.white.name}. Black: ${game.black.name}.\n${drawBoard(pos)}\n` +
        `white to move: ${game.white.name}, within ${game.timeout / 1000} s.\n` +
        `Legal moves: ${legalSans.join(" ")}`,
      data: {
        type: "start",
        white: game.white.slot,
        black: game.black.slot,
        fen: game.fen,
        turn: "white",
        next: game.white.slot,
        clock: this.clock(),
        legal: legalSans,
      },
    });
  }

  finish(result, reason, detail) {
    const game = this.game;
    game.phase = "over";
    game.result = result;
    game.detail = detail;
    game.deadline = null;
    this.ctx.cancel_timer("turn");
    const winner =
      result === "1-0" ? game.white.slot : result === "0-1" ? game.black.slot : null;
    const loser =
      result === "1-0" ? game.black.slot : result === "0-1" ? game.white.slot : null;
    const pgn = this.pgn(result);
    this.ctx.post({
      text: `${result}: ${detail}.${pgn.length <= MAX_PGN_IN_POST ? `\n${pgn}` : ""}`,
      data: {
        type: "result",
        result,
        reason,
        detail,
        winner,
        loser,
        pgn: pgn.length <= MAX_PGN_IN_POST ? pgn : null,
        fen: game.fen,
      },
    });
    this.ctx.end(clip(`${result}: ${detail}`, 200));
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

// `text` cut to at most `maxBytes` bytes of UTF-8, on a character boundary.
function clip(text, maxBytes) {
  let bytes = 0;
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0);
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes > maxBytes) {
      break;
    }
    out += ch;
  }
  return out;
}

function resultOf(status, mover) {
  if (status !== "checkmate") {
    return "1/2-1/2";
  }
  return mover === WHITE ? "1-0" : "0-1";
}

// What a message asks: {kind: "move", move}, "resign", "draw", "accept", {kind: "bad", reason},
// or null when it is chat. `toBot`: a private message to the bot is always meant for it.
function parseCommand(body, toBot) {
  const data = body.data;
  if (data !== null && typeof data === "object" && ("move" in data || "action" in data)) {
    const action = data.action === undefined ? "move" : data.action;
    if (action === "resign" || action === "draw" || action === "accept") {
      return { kind: action };
    }
    if (action === "offer_draw") {
      return { kind: "draw" };
    }
    if (action !== "move") {
      return { kind: "bad", reason: 'Actions are {"move": "e2e4"}, "resign", "draw" and "accept".' };
    }
    if (typeof data.move !== "string") {
      return { kind: "bad", reason: 'A move is a string, e.g. {"move": "e2e4"} or {"move": "Nf3"}.' };
    }
    return { kind: "move", move: data.move };
  }
  if (typeof body.text !== "string") {
    return null;
  }
  const text = body.text.trim();
  const word = text.toLowerCase().replace(/[.!]+$/, "");
  if (word === "resign" || word === "draw" || word === "accept") {
    return { kind: word };
  }
  if (word === "offer draw" || word === "accept draw") {
    return { kind: word === "offer draw" ? "draw" : "accept" };
  }
  const prefixed = /^move\b\s*:?\s*(.*)$/i.exec(text);
  if (prefixed) {
    return { kind: "move", move: prefixed[1] };
  }
  if (toBot || looksLikeMove(text)) {
    return { kind: "move", move: text };
  }
  return null;
}
