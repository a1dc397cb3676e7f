//! The framing on a worker's pipes: a 4-byte big-endian length, then that many bytes of JSON
//! (a [`bots::Job`] going in, an outcome coming out).
//!
//! A worker announces itself once, after it has confined itself, with [`READY`]. The parent
//! skips anything before it (a test harness may print a line first), up to [`MAX_PREAMBLE`]
//! bytes, so a worker that never confines itself is never handed a job.

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a worker writes once it is confined and ready for jobs.
pub const READY: &[u8; 16] = b"\0mcp-worker/1-ok";

/// Most bytes the parent skips while waiting for [`READY`].
pub const MAX_PREAMBLE: usize = 64 * 1024;

/// Largest job: a 256 KiB source, 64 KiB of state, 16 KiB of params and the event, with room.
pub const MAX_JOB_BYTES: usize = 2 * 1024 * 1024;

/// Largest reply: 20 posts of 32 KiB and 64 KiB of state, with room. A worker that sends more
/// is broken or subverted, and is killed.
pub const MAX_REPLY_BYTES: usize = 2 * 1024 * 1024;

/// Writes one frame (blocking; the worker's side).
pub fn write_frame(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    out.write_all(&length.to_be_bytes())?;
    out.write_all(payload)?;
    out.flush()
}

/// Reads one frame of at most `max` bytes (blocking; the worker's side). `Ok(None)` at a clean
/// end of input, between frames.
pub fn read_frame(input: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 4];
    match input.read_exact(&mut length) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = checked_length(length, max)?;
    let mut payload = vec![0; length];
    input.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Writes one frame (the parent's side).
pub async fn send_frame(out: &mut (impl AsyncWrite + Unpin), payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    out.write_all(&length.to_be_bytes()).await?;
    out.write_all(payload).await?;
    out.flush().await
}

/// Reads one frame of at most `max` bytes (the parent's side). The end of input is an error
/// here: the parent only reads when it expects an answer.
pub async fn receive_frame(
    input: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    input.read_exact(&mut length).await?;
    let length = checked_length(length, max)?;
    let mut payload = vec![0; length];
    input.read_exact(&mut payload).await?;
    Ok(payload)
}

/// Reads until [`READY`], skipping at most [`MAX_PREAMBLE`] bytes before it.
pub async fn await_ready(input: &mut (impl AsyncRead + Unpin)) -> io::Result<()> {
    let mut window: Vec<u8> = Vec::with_capacity(READY.len());
    let mut skipped = 0usize;
    loop {
        let byte = input.read_u8().await?;
        window.push(byte);
        if window.len() > READY.len() {
            window.remove(0);
            skipped += 1;
            if skipped > MAX_PREAMBLE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the worker did not announce itself",
                ));
            }
        }
        if window.as_slice() == READY {
            return Ok(());
        }
    }
}

fn checked_length(length: [u8; 4], max: usize) -> io::Result<usize> {
    let length = u32::from_be_bytes(length) as usize;
    if length > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes is over the cap of {max}"),
        ));
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_between_the_two_sides() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").expect("write");
        write_frame(&mut wire, b"").expect("write");
        let mut reader = wire.as_slice();
        assert_eq!(
            receive_frame(&mut reader, 16).await.expect("read"),
            b"hello"
        );
        assert_eq!(receive_frame(&mut reader, 16).await.expect("read"), b"");

        let mut wire = Vec::new();
        send_frame(&mut wire, b"job").await.expect("send");
        let mut reader = wire.as_slice();
        assert_eq!(
            read_frame(&mut reader, 16).expect("read"),
            Some(b"job".to_vec())
        );
        assert_eq!(read_frame(&mut reader, 16).expect("read"), None);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_they_are_read() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &[7; 17]).expect("write");
        let error = receive_frame(&mut wire.as_slice(), 16).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let error = read_frame(&mut wire.as_slice(), 16).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn ready_is_found_after_a_preamble_and_required_within_a_bound() {
        let mut wire = b"\nrunning 1 test\n".to_vec();
        wire.extend_from_slice(READY);
        write_frame(&mut wire, b"after").expect("write");
        let mut reader = wire.as_slice();
        await_ready(&mut reader).await.expect("found");
        assert_eq!(
            receive_frame(&mut reader, 16).await.expect("read"),
            b"after"
        );

        let noise = vec![b'x'; MAX_PREAMBLE + READY.len() + 1];
        let error = await_ready(&mut noise.as_slice()).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let error = await_ready(&mut &b"short"[..]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
