//! The summary table printed at the end: one row per measured figure.

use crate::stats::{Latencies, ms};

/// One line of the summary.
pub struct Row {
    pub scenario: String,
    /// Operations per second, for throughput phases.
    pub rate: Option<f64>,
    pub latencies: Option<Latencies>,
    pub errors: usize,
    pub note: String,
}

/// Prints the rows as an aligned table.
pub fn print_summary(rows: &[Row]) {
    let width = rows
        .iter()
        .map(|row| row.scenario.chars().count())
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    println!();
    println!("== summary ==");
    if rows.is_empty() {
        println!("(no figures)");
        return;
    }
    println!(
        "{:<width$}  {:>10}  {:>9}  {:>9}  {:>9}  {:>6}  notes",
        "scenario", "req/s", "p50", "p99", "max", "errors"
    );
    for row in rows {
        let rate = row
            .rate
            .map_or_else(|| "-".to_owned(), |rate| format!("{rate:.0}"));
        let (p50, p99, max) = row.latencies.map_or_else(
            || ("-".to_owned(), "-".to_owned(), "-".to_owned()),
            |l| (ms(l.p50), ms(l.p99), ms(l.max)),
        );
        println!(
            "{:<width$}  {rate:>10}  {p50:>9}  {p99:>9}  {max:>9}  {:>6}  {}",
            row.scenario, row.errors, row.note
        );
    }
}
