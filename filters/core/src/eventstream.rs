//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! `ConverseStream` and `InvokeModelWithResponseStream` answer:
//! <https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream>
//! and the reference codec `awslabs/aws-c-event-stream`.
//!
//! ```text
//! [total length u32 BE][headers length u32 BE][prelude CRC32 u32 BE]
//! [headers: name-len u8, name, type u8, value…][payload][message CRC32 u32 BE]
//! ```
//!
//! The prelude CRC covers the first 8 bytes, the message CRC everything before it. Envoy hands
//! the filter the body in whatever pieces the network made, so [`Decoder`] keeps a partial
//! frame between calls. A CRC mismatch or an impossible length is an error after which the
//! decoder stops: framing cannot be recovered, and garbage must never reach the client.

/// Smallest frame: prelude (12) + message CRC (4).
const MIN_FRAME: usize = 16;
/// The largest frame AWS sends is 16 MiB; anything longer is corrupt framing.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// aws-c-event-stream's header block limit.
const MAX_HEADERS: usize = 128 * 1024;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), table-free: frames are small and few.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0, bytes)
}

/// Continue a CRC-32 over more bytes (`crc` is a previous result, 0 to start).
pub fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
    let mut crc = !crc;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// A header value. Bedrock only sends strings; the other types are decoded so a frame that has
/// them still parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header (`:event-type`, `:message-type`, …).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why the stream cannot be decoded further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event-stream prelude checksum mismatch")]
    PreludeCrc,
    #[error("event-stream message checksum mismatch")]
    MessageCrc,
    #[error("event-stream frame length {0} is out of range")]
    Length(usize),
    #[error("event-stream headers are malformed")]
    Headers,
    #[error("the event stream ended inside a frame")]
    Truncated,
}

/// Incremental decoder; see the module docs.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    failed: bool,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], FrameError> {
    let end = at.checked_add(n).ok_or(FrameError::Headers)?;
    let out = bytes.get(*at..end).ok_or(FrameError::Headers)?;
    *at = end;
    Ok(out)
}

fn fixed<const N: usize>(bytes: &[u8], at: &mut usize) -> Result<[u8; N], FrameError> {
    let slice = take(bytes, at, N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn parse_headers(mut block: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut headers = Vec::new();
    while !block.is_empty() {
        let mut at = 0;
        let name_len = usize::from(fixed::<1>(block, &mut at)?[0]);
        let name = std::str::from_utf8(take(block, &mut at, name_len)?)
            .map_err(|_| FrameError::Headers)?
            .to_string();
        let kind = fixed::<1>(block, &mut at)?[0];
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(fixed(block, &mut at)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(fixed(block, &mut at)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(fixed(block, &mut at)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed(block, &mut at)?)),
            6 | 7 => {
                let len = usize::from(u16::from_be_bytes(fixed(block, &mut at)?));
                let raw = take(block, &mut at, len)?;
                if kind == 6 {
                    HeaderValue::Bytes(raw.to_vec())
                } else {
                    HeaderValue::String(
                        std::str::from_utf8(raw)
                            .map_err(|_| FrameError::Headers)?
                            .to_string(),
                    )
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed(block, &mut at)?)),
            9 => HeaderValue::Uuid(fixed(block, &mut at)?),
            _ => return Err(FrameError::Headers),
        };
        headers.push((name, value));
        block = block.get(at..).unwrap_or_default();
    }
    Ok(headers)
}

/// Decode one complete frame from the start of `bytes`: `Ok(None)` when more bytes are needed,
/// else the message and the frame's length.
fn decode_frame(bytes: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
    let (Some(total), Some(headers_len), Some(prelude_crc)) =
        (be_u32(bytes, 0), be_u32(bytes, 4), be_u32(bytes, 8))
    else {
        return Ok(None);
    };
    if crc32(bytes.get(..8).unwrap_or_default()) != prelude_crc {
        return Err(FrameError::PreludeCrc);
    }
    let total = usize::try_from(total).map_err(|_| FrameError::Length(usize::MAX))?;
    let headers_len = usize::try_from(headers_len).map_err(|_| FrameError::Headers)?;
    if !(MIN_FRAME..=MAX_FRAME).contains(&total) {
        return Err(FrameError::Length(total));
    }
    if headers_len > MAX_HEADERS || headers_len > total - MIN_FRAME {
        return Err(FrameError::Headers);
    }
    let Some(frame) = bytes.get(..total) else {
        return Ok(None);
    };
    let body_end = total - 4;
    let message_crc = be_u32(frame, body_end).ok_or(FrameError::Truncated)?;
    if crc32(frame.get(..body_end).unwrap_or_default()) != message_crc {
        return Err(FrameError::MessageCrc);
    }
    let headers = parse_headers(frame.get(12..12 + headers_len).unwrap_or_default())?;
    let payload = frame.get(12 + headers_len..body_end).unwrap_or_default();
    Ok(Some((
        Message {
            headers,
            payload: payload.to_vec(),
        },
        total,
    )))
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode `bytes`, returning every frame they complete, in order. After an error nothing
    /// more is decoded (the error is the last item).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<Message, FrameError>> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            match decode_frame(self.buf.get(start..).unwrap_or_default()) {
                Ok(Some((message, len))) => {
                    start += len;
                    out.push(Ok(message));
                }
                Ok(None) => break,
                Err(err) => {
                    self.failed = true;
                    self.buf = Vec::new();
                    out.push(Err(err));
                    return out;
                }
            }
        }
        self.buf.drain(..start);
        out
    }

    /// Bytes of an unfinished frame are held.
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Encode a frame with string headers (tests, fixtures and the mock provider).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        block.extend_from_slice(name.as_bytes());
        block.push(7);
        block.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    let total = 12 + block.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(block.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&block);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    /// aws-c-event-stream's `empty_message` vector.
    const EMPTY: [u8; 16] = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];

    /// aws-c-event-stream's payload-only vector: `{'foo':'bar'}` and no headers.
    fn payload_only() -> Vec<u8> {
        let mut v = vec![
            0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a,
        ];
        v.extend_from_slice(b"{'foo':'bar'}");
        v.extend_from_slice(&[0xc3, 0x65, 0x39, 0x36]);
        v
    }

    /// Decode whole, byte by byte and split at every position: all must agree.
    fn decode_all_ways(input: &[u8]) -> Vec<Result<Message, FrameError>> {
        let whole = Decoder::new().feed(input);
        let mut dec = Decoder::new();
        let bytewise: Vec<_> = input.iter().flat_map(|b| dec.feed(&[*b])).collect();
        assert_eq!(whole, bytewise, "byte by byte");
        for split in 0..=input.len() {
            let mut dec = Decoder::new();
            let (a, b) = input.split_at(split);
            let mut got = dec.feed(a);
            got.extend(dec.feed(b));
            assert_eq!(whole, got, "split at {split}");
        }
        whole
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_update(crc32(b"1234"), b"56789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn published_vectors_decode_and_encode() {
        assert_eq!(encode(&[], b""), EMPTY);
        assert_eq!(encode(&[], b"{'foo':'bar'}"), payload_only());
        let mut both = EMPTY.to_vec();
        both.extend(payload_only());
        let got = decode_all_ways(&both);
        assert_eq!(
            got,
            vec![
                Ok(Message::default()),
                Ok(Message {
                    headers: vec![],
                    payload: b"{'foo':'bar'}".to_vec()
                })
            ]
        );
    }

    #[test]
    fn headers_round_trip_and_split_frames_wait() {
        let frame = encode(
            &[
                (":event-type", "contentBlockDelta"),
                (":message-type", "event"),
            ],
            br#"{"delta":{"text":"hi"}}"#,
        );
        let got = decode_all_ways(&frame);
        let message = got[0].as_ref().unwrap();
        assert_eq!(message.header(":event-type"), Some("contentBlockDelta"));
        assert_eq!(message.header(":message-type"), Some("event"));
        assert_eq!(message.payload, br#"{"delta":{"text":"hi"}}"#);
        let mut dec = Decoder::new();
        assert!(dec.feed(&frame[..frame.len() - 1]).is_empty());
        assert!(dec.has_pending());
        assert_eq!(dec.feed(&frame[frame.len() - 1..]).len(), 1);
        assert!(!dec.has_pending());
    }

    #[test]
    fn corrupted_crcs_stop_the_decoder() {
        let good = encode(&[(":message-type", "event")], b"{}");
        let mut bad_payload = good.clone();
        let at = bad_payload.len() - 5;
        bad_payload[at] ^= 1;
        let mut stream = good.clone();
        stream.extend(&bad_payload);
        stream.extend(&good);
        let got = decode_all_ways(&stream);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err(FrameError::MessageCrc));

        let mut bad_prelude = good.clone();
        bad_prelude[3] ^= 1;
        assert_eq!(
            decode_all_ways(&bad_prelude),
            vec![Err(FrameError::PreludeCrc)]
        );
    }

    #[test]
    fn impossible_lengths_are_errors_not_waits() {
        // Prelude with a valid CRC but a total length below the minimum.
        let mut frame = vec![0, 0, 0, 8, 0, 0, 0, 0];
        let crc = crc32(&frame);
        frame.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(
            Decoder::new().feed(&frame),
            vec![Err(FrameError::Length(8))]
        );
        // Headers longer than the frame.
        let mut frame = vec![0, 0, 0, 16, 0, 0, 0, 9];
        let crc = crc32(&frame);
        frame.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(Decoder::new().feed(&frame), vec![Err(FrameError::Headers)]);
    }

    #[test]
    fn every_header_type_parses() {
        let mut block = Vec::new();
        let mut push = |name: &str, kind: u8, value: &[u8]| {
            block.push(name.len() as u8);
            block.extend_from_slice(name.as_bytes());
            block.push(kind);
            block.extend_from_slice(value);
        };
        push("t", 0, &[]);
        push("f", 1, &[]);
        push("b", 2, &[0xff]);
        push("s", 3, &[0, 2]);
        push("i", 4, &[0, 0, 0, 3]);
        push("l", 5, &[0, 0, 0, 0, 0, 0, 0, 4]);
        push("y", 6, &[0, 2, 1, 2]);
        push("u", 9, &[7; 16]);
        let headers = parse_headers(&block).unwrap();
        assert_eq!(headers.len(), 8);
        assert_eq!(headers[2].1, HeaderValue::Byte(-1));
        assert_eq!(headers[5].1, HeaderValue::Long(4));
        assert_eq!(headers[6].1, HeaderValue::Bytes(vec![1, 2]));
        assert_eq!(parse_headers(&[1, b'x', 42]), Err(FrameError::Headers));
        assert_eq!(parse_headers(&[5, b'x']), Err(FrameError::Headers));
    }
}
