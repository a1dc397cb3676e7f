//! The bots compiled into the binary: their sources (the `.js` files in `builtin/`) and a
//! catalog of names, summaries and code hashes.

use std::sync::OnceLock;

use crate::source::{BotSource, CodeHash};

/// A builtin bot as listed by `list_bots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub code_hash: CodeHash,
}

struct Builtin {
    name: &'static str,
    /// The class name the Python prototype used for this bot, which its users still type.
    prototype_name: &'static str,
    summary: &'static str,
    source: &'static str,
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "guess",
        prototype_name: "GuessBot",
        summary: "GuessBot: guess a secret number in turns with high/low and hot/cold hints. \
                  The bot commits to the number when attached and reveals it with the salt at \
                  the end, so anyone can check it never changed. Params: min, max (default \
                  1-100), turn_order \"join\" or \"random\".",
        source: include_str!("../builtin/guess.js"),
    },
    Builtin {
        name: "chess",
        prototype_name: "ChessBot",
        summary: "ChessBot: chess for two players under the full rules (castling, en passant, \
                  promotion, checkmate, stalemate; threefold repetition, the 50-move rule and \
                  insufficient material are drawn automatically). Moves in SAN or UCI, as text \
                  (\"e4\", \"Nf3\", \"O-O\", \"e7e8q\") or data {\"move\": \"e2e4\"}; \
                  \"resign\", \"draw\" and \"accept\" too. After each move it posts the SAN, \
                  the board as text, the FEN, the PGN so far and whose turn it is; the last post \
                  has the result and the full PGN. Params: colors \"join\" (first to join is \
                  white, default) or \"random\"; move_timeout_ms (per move, default 60000); \
                  on_timeout \"forfeit\" (default) or \"random_move\".",
        source: include_str!("../builtin/chess.js"),
    },
    Builtin {
        name: "echo",
        prototype_name: "EchoBot",
        summary: "EchoBot: repeats every user message back to the channel (privately when the \
                  message was private). For trying bots out.",
        source: include_str!("../builtin/echo.js"),
    },
    Builtin {
        name: "blackjack",
        prototype_name: "BlackjackBot",
        summary: "BlackjackBot: 1-5 players against the dealer (H17, blackjack 3:2, double, split \
                  once, no insurance). Provably fair: each shoe is shuffled from the bot's \
                  committed random value mixed with entropy every player sends privately; the \
                  order is committed at the shuffle and revealed with everything needed to \
                  recompute it, and the hole card is committed. Params: chips, min_bet, max_bet, \
                  decks, hands, min_players, move_timeout_ms, on_timeout.",
        source: include_str!("../builtin/blackjack.js"),
    },
    Builtin {
        name: "tictactoe",
        prototype_name: "TicTacToeBot",
        summary: "TicTacToeBot: tic-tac-toe for the first two players to join, refereed move \
                  by move: after each move the bot posts the board (X, O and the free cells' \
                  numbers) and whose turn it is. Move by posting a cell 1-9 numbered like a \
                  phone keypad (1 2 3 on top) or a coordinate a1-c3 (\"5\", \"b2\", \
                  {\"cell\": 5}), or \"resign\"; violations come back privately with a code. \
                  Params: first \"join\" (default, X is the first to join) or \"random\", \
                  move_timeout_ms (default 60000), on_timeout \"forfeit\" (default) or \
                  \"random_move\".",
        source: include_str!("../builtin/tictactoe.js"),
    },
    Builtin {
        name: "rps",
        prototype_name: "RockPaperScissorsBot",
        summary: "RockPaperScissorsBot: rock-paper-scissors between the first two players to \
                  join, best of N, draws replayed. Send \"rock\", \"paper\" or \"scissors\" \
                  PRIVATELY to the bot (public moves are refused); the bot posts a commitment \
                  to each move as it comes in and reveals both moves with their salts once both \
                  are in, so anyone can check them. Params: best_of (odd, default 3, max 99), \
                  move_timeout_ms (default 60000, one clock per round), on_timeout \"forfeit\" \
                  (default) or \"random_move\".",
        source: include_str!("../builtin/rps.js"),
    },
    Builtin {
        name: "sealed",
        prototype_name: "SealedExchangeBot",
        summary: "SealedExchangeBot: a question fixed at the start, answered PRIVATELY to the \
                  bot by N participants; the bot posts a commitment to each answer as it \
                  arrives and reveals all answers with their salts together, only once every \
                  answer is in. Anyone may say \"withdraw\" before then and nothing is \
                  revealed. Needs a channel created with reveal_private false. Params: question \
                  (required), participants (2-10, default 2), mode \"exchange\" (free text, \
                  default) or \"auction\" (sealed bids: min_bid, max_bid, price \"first\" or \
                  \"second\"), answer_timeout_ms, allow_reveal_after_end.",
        source: include_str!("../builtin/sealed.js"),
    },
    Builtin {
        name: "judge",
        prototype_name: "ContractJudgeBot",
        summary: "ContractJudgeBot: 2-5 parties propose terms (text plus clauses: obligor, \
                  beneficiary, deadline, fulfilled by the beneficiary's confirmation or by a \
                  page the server fetches) and accept their exact hash; the judge then rules on \
                  each clause mechanically, fulfilled (confirmed before the deadline, or the \
                  witness page showed it) or breached (the deadline passed without that), and \
                  records anything else as disputed. Every ruling cites its rule and the \
                  messages it rests on; the full record ends the run. Params: parties \
                  (default 2).",
        source: include_str!("../builtin/judge.js"),
    },
    Builtin {
        name: "witness",
        prototype_name: "WitnessBot",
        summary: "WitnessBot: ask it to fetch an HTTPS URL (\"fetch https://example.com/page\" \
                  or data {\"fetch\": url}) and the server fetches it outside the sandbox \
                  (public addresses only, capped in size, time and rate), records what it saw \
                  (the address, TLS version and cipher, the certificate chain, the status, the \
                  body's SHA-256 and its first 8 KiB) as a notice signed with its key, and the \
                  bot posts a summary everyone in the channel can cite. It proves what this \
                  server saw, not a TLS notarization. No params.",
        source: include_str!("../builtin/witness.js"),
    },
];

/// Every builtin bot, in catalog order. Hashed once, on first use.
pub fn catalog() -> &'static [BuiltinInfo] {
    static CATALOG: OnceLock<Vec<BuiltinInfo>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        BUILTINS
            .iter()
            .map(|bot| BuiltinInfo {
                name: bot.name,
                summary: bot.summary,
                code_hash: CodeHash::of(bot.source),
            })
            .collect()
    })
}

/// The builtin bot called `name`, ready to run. Names match whatever their case, and the
/// prototype's class names (`GuessBot`) name the same bots.
pub fn builtin(name: &str) -> Option<BotSource> {
    let bot = BUILTINS.iter().find(|bot| {
        name.eq_ignore_ascii_case(bot.name) || name.eq_ignore_ascii_case(bot.prototype_name)
    })?;
    let source =
        BotSource::new(bot.name, bot.source).expect("builtin sources are far below the source cap");
    Some(source)
}
