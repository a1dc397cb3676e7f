//! How each request on a connection is framed, read off the wire before hyper parses it.
//!
//! hyper folds away what a request-smuggling attempt looks like: it keeps one of several equal
//! `Content-Length` headers, and when `Transfer-Encoding` comes with `Content-Length` it drops
//! the length and reads the body as chunked. Neither reaches the application, yet both mean a
//! proxy in front of us may have framed the same bytes differently (RFC 9112 §6.3 and §11.2).
//! So the connection's bytes pass through [`Inspected`], which reads each request head with the
//! same parser hyper uses (`httparse`) and queues one [`Framing`] verdict per head; the service
//! built in `listen` takes the next verdict for each request it receives, in order, and
//! `middleware::buffer_body` refuses the unsound ones.
//!
//! To find the next head the scanner skips each body by its `Content-Length`. It does not follow
//! chunked bodies: a chunked request is served and its connection closed afterwards, so no head
//! ever goes unread.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest head the scanner buffers while waiting for its end. Past hyper's own cap (see
/// `listen::MAX_REQUEST_HEAD_BYTES`), so hyper refuses such a head first and closes.
const MAX_BUFFERED_HEAD: usize = 16 * 1024;

/// hyper's default cap on the number of headers; a head with more is refused by hyper.
const MAX_HEADERS: usize = 100;

/// How one request was framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One `Content-Length`, or no body: the connection may carry further requests.
    Sound,
    /// `Transfer-Encoding` alone. Served, but the scanner does not follow chunked bodies, so
    /// the connection closes after this request.
    Chunked,
    /// The scanner had no verdict for this request (it stopped following the connection).
    /// Served, then the connection closes.
    Untracked,
    /// `Content-Length` more than once (hyper keeps one if they agree): refused.
    RepeatedContentLength,
    /// `Content-Length` and `Transfer-Encoding` together (hyper drops the length): refused.
    LengthWithTransferEncoding,
}

impl Framing {
    /// Why a request framed this way is refused, if it is.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Framing::Sound | Framing::Chunked | Framing::Untracked => None,
            Framing::RepeatedContentLength => Some("the request has more than one Content-Length"),
            Framing::LengthWithTransferEncoding => {
                Some("the request has both Content-Length and Transfer-Encoding")
            }
        }
    }

    /// Whether the connection must close after this request's answer.
    pub fn closes_connection(self) -> bool {
        self != Framing::Sound
    }
}

/// The verdicts of one connection's heads, oldest first, shared between the reader and the
/// service.
#[derive(Debug, Clone, Default)]
pub struct Verdicts(Arc<Mutex<VecDeque<Framing>>>);

impl Verdicts {
    /// The verdict of the next request hyper hands to the service.
    pub fn next(&self) -> Framing {
        self.lock().pop_front().unwrap_or(Framing::Untracked)
    }

    fn push(&self, framing: Framing) {
        self.lock().push_back(framing);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Framing>> {
        // A panic while holding this lock leaves a consistent queue.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the scanner is in the connection's byte stream.
#[derive(Debug)]
enum Position {
    /// Reading a head; holds its first bytes when it arrived in pieces (empty otherwise).
    Head(Vec<u8>),
    /// Skipping this many body bytes.
    Body(u64),
    /// No longer following: after a chunked body, or a head hyper will refuse (and close on).
    Stopped,
}

/// Follows a connection's incoming bytes and records a [`Framing`] per request head.
#[derive(Debug)]
pub struct HeadScanner {
    position: Position,
    verdicts: Verdicts,
}

impl HeadScanner {
    pub fn new(verdicts: Verdicts) -> Self {
        Self {
            position: Position::Head(Vec::new()),
            verdicts,
        }
    }

    /// Takes the next bytes read from the connection.
    pub fn feed(&mut self, bytes: &[u8]) {
        match &mut self.position {
            Position::Head(pending) if !pending.is_empty() => {
                pending.extend_from_slice(bytes);
                let joined = std::mem::take(pending);
                self.feed_from_head_start(&joined);
            }
            _ => self.feed_from_head_start(bytes),
        }
    }

    /// As `feed`, when no part of the current head is buffered.
    fn feed_from_head_start(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.position {
                Position::Stopped => return,
                Position::Body(left) => {
                    let skipped = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    bytes = &bytes[skipped..];
                    *left -= skipped as u64;
                    if *left == 0 {
                        self.position = Position::Head(Vec::new());
                    }
                }
                Position::Head(pending) => match read_head(bytes) {
                    HeadRead::Partial if bytes.len() <= MAX_BUFFERED_HEAD => {
                        // Only a head split across reads is copied; most arrive whole.
                        pending.extend_from_slice(bytes);
                        return;
                    }
                    HeadRead::Partial | HeadRead::Refused => {
                        self.position = Position::Stopped;
                    }
                    HeadRead::Complete {
                        head_len,
                        framing,
                        body_len,
                    } => {
                        self.verdicts.push(framing);
                        bytes = &bytes[head_len..];
                        self.position = match framing {
                            Framing::Sound if body_len > 0 => Position::Body(body_len),
                            Framing::Sound => Position::Head(Vec::new()),
                            _ => Position::Stopped,
                        };
                    }
                },
            }
        }
    }
}

/// What the start of a byte stream holds.
#[derive(Debug, PartialEq, Eq)]
enum HeadRead {
    /// Not yet a whole head.
    Partial,
    /// A head hyper's parser refuses too; it answers 400 and closes the connection.
    Refused,
    Complete {
        head_len: usize,
        framing: Framing,
        body_len: u64,
    },
}

fn read_head(bytes: &[u8]) -> HeadRead {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return HeadRead::Partial,
        Err(_) => return HeadRead::Refused,
    };
    let mut lengths = request
        .headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case("content-length"));
    let first_length = lengths.next();
    let repeated_length = lengths.next().is_some();
    let chunked = request
        .headers
        .iter()
        .any(|header| header.name.eq_ignore_ascii_case("transfer-encoding"));
    let (framing, body_len) = match (first_length, chunked) {
        (Some(_), true) => (Framing::LengthWithTransferEncoding, 0),
        (None, true) => (Framing::Chunked, 0),
        (Some(_), false) if repeated_length => (Framing::RepeatedContentLength, 0),
        (Some(length), false) => match parse_length(length.value) {
            Some(length) => (Framing::Sound, length),
            None => return HeadRead::Refused,
        },
        (None, false) => (Framing::Sound, 0),
    };
    HeadRead::Complete {
        head_len,
        framing,
        body_len,
    }
}

/// A `Content-Length` value as hyper reads one: ASCII digits only.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A connection whose incoming bytes pass through a [`HeadScanner`] on their way to hyper.
#[derive(Debug)]
pub struct Inspected<T> {
    io: T,
    scanner: HeadScanner,
}

impl<T> Inspected<T> {
    pub fn new(io: T, verdicts: Verdicts) -> Self {
        Self {
            io,
            scanner: HeadScanner::new(verdicts),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Inspected<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            this.scanner.feed(&buf.filled()[before..]);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Inspected<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> Vec<Framing> {
        let verdicts = Verdicts::default();
        let mut scanner = HeadScanner::new(verdicts.clone());
        for piece in pieces {
            scanner.feed(piece);
        }
        verdicts.lock().iter().copied().collect()
    }

    #[test]
    fn sound_requests_are_followed_across_bodies_and_pipelining() {
        let two = b"POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(scan(&[two]), [Framing::Sound, Framing::Sound]);
        // The same bytes one at a time: heads split anywhere, bodies too.
        let bytes: Vec<&[u8]> = two.chunks(1).collect();
        assert_eq!(scan(&bytes), [Framing::Sound, Framing::Sound]);
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_skipped() {
        let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n";
        let mut stream = format!(
            "POST /api HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        stream.extend_from_slice(body);
        assert_eq!(scan(&[&stream]), [Framing::Sound]);
    }

    #[test]
    fn repeated_lengths_and_length_with_chunked_are_unsound() {
        for (head, expected) in [
            (
                "POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n",
                Framing::RepeatedContentLength,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                Framing::LengthWithTransferEncoding,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                Framing::LengthWithTransferEncoding,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                Framing::Chunked,
            ),
        ] {
            assert_eq!(scan(&[head.as_bytes()]), [expected], "{head}");
            assert_eq!(expected.refusal().is_some(), expected != Framing::Chunked);
            assert!(expected.closes_connection());
        }
    }

    #[test]
    fn the_scanner_stops_after_chunked_bodies_and_heads_hyper_refuses() {
        let chunked_then_more =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(scan(&[chunked_then_more]), [Framing::Chunked]);
        assert_eq!(scan(&[b"NOT HTTP\r\n\r\nGET / HTTP/1.1\r\n\r\n"]), []);
        assert_eq!(
            scan(&[b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\nGET / HTTP/1.1\r\n\r\n"]),
            []
        );
        let endless = vec![b'a'; MAX_BUFFERED_HEAD + 1];
        assert_eq!(scan(&[b"GET / HTTP/1.1\r\nX: ", &endless, b"\r\n\r\n"]), []);
    }

    #[test]
    fn a_request_without_a_verdict_closes_its_connection() {
        assert_eq!(Verdicts::default().next(), Framing::Untracked);
        assert!(Framing::Untracked.closes_connection());
        assert!(!Framing::Sound.closes_connection());
    }
}
