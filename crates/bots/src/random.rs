//! Deterministic randomness for one event, derived from the bot's seed.
//!
//! The stream of bytes for an event is the concatenation of 32-byte blocks
//!
//! ```text
//! block(i) = HMAC-SHA256(key = seed,
//!                        msg = "mcp-multiplayer/bot-random/v1" || be64(event_seq) || be64(i))
//! ```
//!
//! for `i = 0, 1, 2, …`. Every draw (`ctx.random_bytes`, `ctx.random_int`, `Math.random`) takes
//! the next unused bytes of the stream, in call order. So the same seed, event seq and calls give
//! the same values, which is what lets anyone holding the seed replay a bot; and distinct events
//! never share bytes, because their seqs differ.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::event::BotSeed;

/// Domain-separation label of the derivation above.
pub const RANDOM_LABEL: &[u8] = b"mcp-multiplayer/bot-random/v1";

/// The byte stream of one event.
pub struct EventRandom {
    seed: [u8; 32],
    event_seq: i64,
    next_block: u64,
    buffer: [u8; 32],
    /// Bytes of `buffer` already handed out.
    used: usize,
}

impl EventRandom {
    pub fn new(seed: &BotSeed, event_seq: i64) -> Self {
        Self {
            seed: seed.0,
            event_seq,
            next_block: 0,
            buffer: [0; 32],
            used: 32,
        }
    }

    fn refill(&mut self) {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.seed)
            .expect("HMAC takes keys of any length");
        mac.update(RANDOM_LABEL);
        mac.update(&self.event_seq.to_be_bytes());
        mac.update(&self.next_block.to_be_bytes());
        self.buffer = mac.finalize().into_bytes().into();
        self.next_block += 1;
        self.used = 0;
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.used == self.buffer.len() {
                self.refill();
            }
            *byte = self.buffer[self.used];
            self.used += 1;
        }
    }

    /// The next 8 bytes, big-endian.
    pub fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill(&mut bytes);
        u64::from_be_bytes(bytes)
    }

    /// A uniform integer in `lo..=hi` (requires `lo <= hi`), by rejection sampling: draw a u64,
    /// retry while it falls in the incomplete last bucket, then take it modulo the range size.
    pub fn int_in(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.abs_diff(lo) + 1;
        let accept_below = u64::MAX - (u64::MAX % span);
        loop {
            let draw = self.next_u64();
            if draw < accept_below {
                return lo.wrapping_add((draw % span) as i64);
            }
        }
    }

    /// A float in `[0, 1)` for `Math.random`: the top 53 bits of a u64 draw, divided by 2^53.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_hmac_blocks_in_order() {
        let seed = BotSeed([7; 32]);
        let mut random = EventRandom::new(&seed, 3);
        let mut first = [0u8; 40];
        random.fill(&mut first);

        let block = |i: u64| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).expect("any key");
            mac.update(b"mcp-multiplayer/bot-random/v1");
            mac.update(&3i64.to_be_bytes());
            mac.update(&i.to_be_bytes());
            mac.finalize().into_bytes()
        };
        assert_eq!(&first[..32], block(0).as_slice());
        assert_eq!(&first[32..], &block(1)[..8]);
    }

    #[test]
    fn events_get_different_streams() {
        let seed = BotSeed([1; 32]);
        let a = EventRandom::new(&seed, 1).next_u64();
        let b = EventRandom::new(&seed, 2).next_u64();
        assert_ne!(a, b);
    }

    #[test]
    fn ints_stay_in_range() {
        let mut random = EventRandom::new(&BotSeed([9; 32]), 1);
        for _ in 0..1000 {
            let n = random.int_in(1, 6);
            assert!((1..=6).contains(&n));
        }
        assert_eq!(random.int_in(5, 5), 5);
        let wide = random.int_in(-(1 << 53), 1 << 53);
        assert!(wide.abs() <= 1 << 53);
        let unit = random.unit_f64();
        assert!((0.0..1.0).contains(&unit));
    }
}
