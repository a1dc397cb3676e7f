//! Prints what one GuessBot move and one ChessBot move cost, fresh runtime included:
//! `cargo run -p bots --release --example event_cost [iterations]`.

fn main() {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(2000);
    let (p50, p99) = bots::bench::event_cost(iterations);
    println!(
        "GuessBot move, {iterations} events: p50 {:.3} ms, p99 {:.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    let (p50, p99) = bots::bench::chess_event_cost(iterations);
    println!(
        "ChessBot move, {iterations} events: p50 {:.3} ms, p99 {:.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
