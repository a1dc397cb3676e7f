//! Per-address limits on what strangers can make the authorization server do: register clients,
//! open authorization requests, call the token endpoint, and guess the operator's passphrase.
//! Each limit is a token bucket per client address (a burst, refilled evenly over its period).
//!
//! The address is whatever the HTTP layer determined the client to be (the TCP peer, or the
//! address a trusted proxy forwarded). IPv6 addresses count per /64, the block one subscriber
//! usually gets, so that one host cannot rotate through its own addresses.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// The unauthenticated endpoints that are limited per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/register`: dynamic client registration.
    Register,
    /// `/authorize`: the consent page and its answers.
    Authorize,
    /// `/token` and `/revoke`.
    Token,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Register => "/register",
            Endpoint::Authorize => "/authorize",
            Endpoint::Token => "/token",
        }
    }
}

/// How many requests one address may make to each endpoint: that many at once, then the
/// allowance refills evenly over the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointLimits {
    pub register_per_hour: NonZeroU32,
    pub authorize_per_minute: NonZeroU32,
    pub token_per_minute: NonZeroU32,
}

impl Default for EndpointLimits {
    /// A person signs in with one registration and two or three authorization requests; a
    /// client refreshes its tokens about once an hour. These leave room for an office behind
    /// one address, and turn a flood of thousands a second into a trickle.
    fn default() -> Self {
        EndpointLimits {
            register_per_hour: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            authorize_per_minute: NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN),
            token_per_minute: NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Passphrase attempts one address may make: a burst of this many, then one a minute.
pub const PASSPHRASE_ATTEMPTS: u32 = 10;

/// The limiters, one per endpoint and one for passphrase attempts.
pub(crate) struct Throttle {
    register: DefaultKeyedRateLimiter<IpAddr>,
    authorize: DefaultKeyedRateLimiter<IpAddr>,
    token: DefaultKeyedRateLimiter<IpAddr>,
    passphrase: DefaultKeyedRateLimiter<IpAddr>,
}

impl Throttle {
    pub(crate) fn new(limits: EndpointLimits) -> Self {
        let per = |count: NonZeroU32, period: Duration| {
            let interval = period / count.get();
            let quota = Quota::with_period(interval).unwrap_or_else(|| Quota::per_second(count));
            DefaultKeyedRateLimiter::keyed(quota.allow_burst(count))
        };
        let minute = Duration::from_secs(60);
        Throttle {
            register: per(limits.register_per_hour, Duration::from_secs(3600)),
            authorize: per(limits.authorize_per_minute, minute),
            token: per(limits.token_per_minute, minute),
            passphrase: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(NonZeroU32::MIN)
                    .allow_burst(NonZeroU32::new(PASSPHRASE_ATTEMPTS).unwrap_or(NonZeroU32::MIN)),
            ),
        }
    }

    /// Counts a request from `from` to `endpoint`; refuses it with the time until the next one
    /// is allowed.
    pub(crate) fn check(&self, endpoint: Endpoint, from: IpAddr) -> Result<(), Duration> {
        let limiter = match endpoint {
            Endpoint::Register => &self.register,
            Endpoint::Authorize => &self.authorize,
            Endpoint::Token => &self.token,
        };
        check(limiter, from)
    }

    /// Counts a passphrase attempt from `from`.
    pub(crate) fn check_passphrase(&self, from: IpAddr) -> Result<(), Duration> {
        check(&self.passphrase, from)
    }

    /// Drops the buckets of addresses that are back to a full allowance, so that the memory
    /// held is that of recent clients only.
    pub(crate) fn forget_idle(&self) {
        for limiter in [
            &self.register,
            &self.authorize,
            &self.token,
            &self.passphrase,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, from: IpAddr) -> Result<(), Duration> {
    limiter
        .check_key(&bucket(from))
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// The bucket an address counts against: an IPv4 address itself (also when written as an
/// IPv4-mapped IPv6 address), an IPv6 address by its /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("a test address")
    }

    fn limits(each: u32) -> EndpointLimits {
        let each = NonZeroU32::new(each).expect("positive");
        EndpointLimits {
            register_per_hour: each,
            authorize_per_minute: each,
            token_per_minute: each,
        }
    }

    #[test]
    fn each_endpoint_allows_its_burst_per_address() {
        let throttle = Throttle::new(limits(3));
        for _ in 0..3 {
            assert_eq!(
                throttle.check(Endpoint::Register, ip("203.0.113.1")),
                Ok(())
            );
        }
        let wait = throttle
            .check(Endpoint::Register, ip("203.0.113.1"))
            .expect_err("the fourth registration waits");
        // Three an hour: the next one comes 20 minutes later.
        assert!(wait > Duration::from_secs(1100) && wait <= Duration::from_secs(1200));
        // Another address, and another endpoint, have their own allowance.
        assert_eq!(
            throttle.check(Endpoint::Register, ip("203.0.113.2")),
            Ok(())
        );
        assert_eq!(throttle.check(Endpoint::Token, ip("203.0.113.1")), Ok(()));
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let throttle = Throttle::new(limits(1));
        assert_eq!(
            throttle.check(Endpoint::Authorize, ip("2001:db8:1:2::1")),
            Ok(())
        );
        assert!(
            throttle
                .check(Endpoint::Authorize, ip("2001:db8:1:2:ffff::9"))
                .is_err()
        );
        assert_eq!(
            throttle.check(Endpoint::Authorize, ip("2001:db8:1:3::1")),
            Ok(())
        );
        assert_eq!(throttle.check(Endpoint::Token, ip("192.0.2.7")), Ok(()));
        assert!(
            throttle
                .check(Endpoint::Token, ip("::ffff:192.0.2.7"))
                .is_err()
        );
    }

    #[test]
    fn passphrase_attempts_have_their_own_allowance() {
        let throttle = Throttle::new(limits(1));
        for _ in 0..PASSPHRASE_ATTEMPTS {
            assert_eq!(throttle.check_passphrase(ip("198.51.100.4")), Ok(()));
        }
        assert!(throttle.check_passphrase(ip("198.51.100.4")).is_err());
        assert_eq!(
            throttle.check(Endpoint::Authorize, ip("198.51.100.4")),
            Ok(())
        );
    }
}
