//! What the images of a request count in its input-token estimate.
//!
//! The estimate is bytes / 4 ([`super::estimate`]), which is right for text and absurd for a
//! base64 image: a 1 MB photo would be ~262k "tokens", over most context windows and limits,
//! while providers count an image by its size in pixels. So the image's base64 bytes are taken
//! out of the byte count and the image counts what the providers' rules say for its dimensions,
//! read from the PNG / JPEG / GIF / WebP header (only the few bytes of the header are decoded,
//! at the offsets they sit, never the image):
//!
//! - OpenAI (<https://platform.openai.com/docs/guides/images-vision#calculating-costs>):
//!   `detail: low` is 85 tokens; otherwise the image is scaled to fit 2048×2048, then its shortest
//!   side to 768, and costs 170 per 512-pixel tile plus 85.
//! - Anthropic (<https://docs.anthropic.com/en/docs/build-with-claude/vision#calculate-image-costs>):
//!   width × height / 750, after scaling the long edge to at most 1568 pixels.
//! - Gemini (<https://ai.google.dev/gemini-api/docs/tokens#multimodal-tokens>): 258 when both
//!   sides are at most 384 pixels, else 258 per 768×768 tile.
//!
//! Router estimates before it knows which backend (or fallback) will count the image, so an
//! image counts the largest of the three. An image whose dimensions cannot be read (a URL, an
//! unknown format, a cut header) counts [`UNKNOWN_IMAGE_TOKENS`]. The real usage replaces the
//! estimate when the answer ends.
//!
//! Image shapes recognised, at any depth of the walked JSON value (so `messages` of Chat
//! Completions and Anthropic Messages, and `input` of Responses, all work):
//! - Chat Completions: `{"type": "image_url", "image_url": {"url": "data:…" | "https://…", "detail"}}`;
//! - Anthropic Messages: `{"type": "image", "source": {"type": "base64", "media_type", "data"}}`
//!   or `{"source": {"type": "url", "url"}}`;
//! - Responses: `{"type": "input_image", "image_url": "data:…" | "https://…", "detail"}` (or
//!   `file_id`).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Tokens of an image whose dimensions are unknown: Anthropic's documented maximum (~1,600 for
/// an image at its size limit), above OpenAI's largest high-detail count (1,445 for 2048×768).
pub const UNKNOWN_IMAGE_TOKENS: u64 = 1_600;

/// The images found in a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageCost {
    pub count: u32,
    /// Bytes of the image data strings (base64 and data URLs), left out of the text estimate.
    pub bytes: u64,
    pub tokens: u64,
}

impl ImageCost {
    fn add(&mut self, other: ImageCost) {
        self.count += other.count;
        self.bytes += other.bytes;
        self.tokens += other.tokens;
    }

    /// The input estimate of a body of `body_len` bytes holding these images: its text at
    /// bytes / 4, each image at its own count.
    pub fn input_tokens(&self, body_len: usize) -> u64 {
        (body_len as u64).saturating_sub(self.bytes).div_ceil(4) + self.tokens
    }
}

// ---------------------------------------------------------------------------------------------
// Token rules

/// OpenAI's `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Low,
    /// `high` or `auto` (auto may pick high: counted as high).
    High,
}

fn scale_to_fit(w: u64, h: u64, max_w: u64, max_h: u64) -> (u64, u64) {
    if w <= max_w && h <= max_h {
        return (w, h);
    }
    // Keep the aspect ratio: the side that overflows most sets the factor.
    if w * max_h >= h * max_w {
        (max_w, (h * max_w).div_ceil(w).max(1))
    } else {
        ((w * max_h).div_ceil(h).max(1), max_h)
    }
}

/// OpenAI's rule (GPT-4o class models).
pub fn openai_tokens(w: u64, h: u64, detail: Detail) -> u64 {
    if detail == Detail::Low {
        return 85;
    }
    let (w, h) = scale_to_fit(w, h, 2048, 2048);
    let short = w.min(h);
    let (w, h) = if short > 768 {
        ((w * 768).div_ceil(short), (h * 768).div_ceil(short))
    } else {
        (w, h)
    };
    170 * w.div_ceil(512) * h.div_ceil(512) + 85
}

/// Anthropic's rule.
pub fn anthropic_tokens(w: u64, h: u64) -> u64 {
    let (w, h) = scale_to_fit(w, h, 1568, 1568);
    (w * h).div_ceil(750)
}

/// Gemini's rule.
pub fn gemini_tokens(w: u64, h: u64) -> u64 {
    if w <= 384 && h <= 384 {
        return 258;
    }
    258 * w.div_ceil(768) * h.div_ceil(768)
}

/// The largest of the three rules (router does not know which backend will count it).
pub fn image_tokens(dimensions: Option<(u32, u32)>, detail: Detail) -> u64 {
    let Some((w, h)) = dimensions.filter(|(w, h)| *w > 0 && *h > 0) else {
        return UNKNOWN_IMAGE_TOKENS;
    };
    let (w, h) = (u64::from(w), u64::from(h));
    openai_tokens(w, h, detail)
        .max(anthropic_tokens(w, h))
        .max(gemini_tokens(w, h))
}

// ---------------------------------------------------------------------------------------------
// Image headers, from base64 without decoding the image

/// Random access to the bytes a base64 string encodes: each byte is decoded from its own
/// 4-character group, so reading a header costs a few groups however large the image.
struct Base64<'a> {
    text: &'a [u8],
}

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    }))
}

impl Base64<'_> {
    /// The byte at `offset`, if the string holds it (padding and whitespace end it: a header
    /// is never there).
    fn byte(&self, offset: usize) -> Option<u8> {
        let group = offset / 3;
        let chars = self.text.get(group * 4..group * 4 + 4)?;
        let mut bits = 0u32;
        let mut valid = 0;
        for &c in chars {
            match sextet(c) {
                Some(v) => {
                    bits = (bits << 6) | v;
                    valid += 1;
                }
                None if c == b'=' => bits <<= 6,
                None => return None,
            }
        }
        let index = offset % 3;
        // Bytes past the padding do not exist.
        if valid < index + 2 {
            return None;
        }
        Some((bits >> (16 - 8 * index)) as u8)
    }

    fn bytes<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.byte(offset + i)?;
        }
        Some(out)
    }

    fn u16_be(&self, offset: usize) -> Option<u32> {
        let [a, b] = self.bytes::<2>(offset)?;
        Some(u32::from(u16::from_be_bytes([a, b])))
    }

    fn u16_le(&self, offset: usize) -> Option<u32> {
        let [a, b] = self.bytes::<2>(offset)?;
        Some(u32::from(u16::from_le_bytes([a, b])))
    }

    fn u24_le(&self, offset: usize) -> Option<u32> {
        let [a, b, c] = self.bytes::<3>(offset)?;
        Some(u32::from_le_bytes([a, b, c, 0]))
    }

    fn u32_be(&self, offset: usize) -> Option<u32> {
        Some(u32::from_be_bytes(self.bytes::<4>(offset)?))
    }
}

/// Segments a JPEG may hold before its frame header; a real file has a handful.
const MAX_JPEG_SEGMENTS: usize = 64;

/// Width and height from the image's header: PNG `IHDR`, GIF logical screen, WebP `VP8 `/`VP8L`/
/// `VP8X`, JPEG's first start-of-frame (walking the segments by their lengths).
fn dimensions(data: &Base64<'_>) -> Option<(u32, u32)> {
    let magic = data.bytes::<4>(0)?;
    match magic {
        [0x89, b'P', b'N', b'G'] => Some((data.u32_be(16)?, data.u32_be(20)?)),
        [b'G', b'I', b'F', b'8'] => Some((data.u16_le(6)?, data.u16_le(8)?)),
        [b'R', b'I', b'F', b'F'] if data.bytes::<4>(8)? == *b"WEBP" => {
            match &data.bytes::<4>(12)? {
                b"VP8 " => Some((data.u16_le(26)? & 0x3fff, data.u16_le(28)? & 0x3fff)),
                b"VP8L" => {
                    let [a, b, c, d] = data.bytes::<4>(21)?;
                    let bits = u32::from_le_bytes([a, b, c, d]);
                    Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
                }
                b"VP8X" => Some((data.u24_le(24)? + 1, data.u24_le(27)? + 1)),
                _ => None,
            }
        }
        [0xff, 0xd8, ..] => {
            let mut at = 2;
            for _ in 0..MAX_JPEG_SEGMENTS {
                let [marker_start, marker] = data.bytes::<2>(at)?;
                if marker_start != 0xff {
                    return None;
                }
                let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
                if sof {
                    return Some((data.u16_be(at + 7)?, data.u16_be(at + 5)?));
                }
                at += 2 + data.u16_be(at + 2)? as usize;
            }
            None
        }
        _ => None,
    }
}

/// Dimensions of a `data:<type>;base64,<data>` URL's image, or of bare base64.
fn dimensions_of(text: &str) -> Option<(u32, u32)> {
    let data = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',')?.1,
        None => text,
    };
    dimensions(&Base64 {
        text: data.as_bytes(),
    })
}

// ---------------------------------------------------------------------------------------------
// The walk

/// Walks any JSON value and adds up the images it holds ([`ImageCost`]). Strings are read in
/// place (no copy); only the fields an image is made of are looked at.
#[derive(Debug, Default)]
pub struct ImageScan(pub ImageCost);

/// A string field of a possible image object: its length and, when it is image data, the
/// dimensions its header gives.
#[derive(Default)]
struct Text {
    len: u64,
    is_data: bool,
    dimensions: Option<(u32, u32)>,
    /// Short strings (`type`, `detail`) are kept.
    short: Option<String>,
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                let is_data = s.len() > 64 && !s.starts_with("http");
                Ok(Text {
                    len: s.len() as u64,
                    is_data,
                    dimensions: if is_data { dimensions_of(s) } else { None },
                    short: (s.len() <= 32).then(|| s.to_string()),
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// What a walked value holds: the images found in it, and — when it is the inner part of an
/// image (`image_url: {url, detail}`, `source: {type, data | url}`) — that part's data.
#[derive(Default)]
struct Walked {
    cost: ImageCost,
    part: Option<Part>,
}

struct Part {
    text: Text,
    detail: Option<String>,
}

/// A field that may be a string ([`Text`]) or anything else (walked for images).
enum Field {
    Text(Text),
    Other(Walked),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
                Text::deserialize(de::value::StrDeserializer::<E>::new(s)).map(Field::Text)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
                Ok(Field::Other(Walked::default()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field, E> {
                Ok(Field::Other(Walked::default()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field, E> {
                Ok(Field::Other(Walked::default()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
                Ok(Field::Other(Walked::default()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
                Ok(Field::Other(Walked::default()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field, A::Error> {
                WalkVisitor.visit_seq(seq).map(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
                WalkVisitor.visit_map(map).map(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The image `type`s of the three client APIs.
fn is_image_type(kind: &str) -> bool {
    matches!(kind, "image_url" | "input_image" | "image")
}

struct WalkVisitor;

impl<'de> Visitor<'de> for WalkVisitor {
    type Value = Walked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Walked, E> {
        Ok(Walked::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Walked, E> {
        Ok(Walked::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Walked, E> {
        Ok(Walked::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Walked, E> {
        Ok(Walked::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Walked, E> {
        Ok(Walked::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Walked, E> {
        Ok(Walked::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Walked, A::Error> {
        let mut cost = ImageCost::default();
        while let Some(item) = seq.next_element::<Walked>()? {
            cost.add(item.cost);
        }
        Ok(Walked { cost, part: None })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Walked, A::Error> {
        let mut cost = ImageCost::default();
        let mut kind = None;
        let mut detail = None;
        // The image data: `image_url` (a string, or the part `{url, detail}`), `source` (the
        // part `{type, data | url}`), or this object's own `data` / `url` when it is a part.
        let mut image: Option<Text> = None;
        let mut own: Option<Text> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" | "detail" | "image_url" | "source" | "data" | "url" => {
                    match (key.as_ref(), map.next_value::<Field>()?) {
                        ("type", Field::Text(text)) => kind = text.short,
                        ("detail", Field::Text(text)) => detail = text.short,
                        ("image_url", Field::Text(text)) => image = Some(text),
                        ("data" | "url", Field::Text(text)) => own = Some(text),
                        (_, Field::Text(_)) => {}
                        (_, Field::Other(inner)) => {
                            cost.add(inner.cost);
                            if let Some(part) = inner.part {
                                image = Some(part.text);
                                detail = detail.or(part.detail);
                            }
                        }
                    }
                }
                _ => cost.add(map.next_value::<Walked>()?.cost),
            }
        }
        if kind.as_deref().is_some_and(is_image_type) {
            let image = image.or(own);
            let detail = match detail.as_deref() {
                Some("low") => Detail::Low,
                _ => Detail::High,
            };
            let dimensions = image.as_ref().and_then(|t| t.dimensions);
            cost.add(ImageCost {
                count: 1,
                bytes: image.filter(|t| t.is_data).map_or(0, |t| t.len),
                tokens: image_tokens(dimensions, detail),
            });
            return Ok(Walked { cost, part: None });
        }
        let part = own.map(|text| Part { text, detail });
        Ok(Walked { cost, part })
    }
}

impl<'de> Deserialize<'de> for Walked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WalkVisitor)
    }
}

impl<'de> Deserialize<'de> for ImageScan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WalkVisitor).map(|w| ImageScan(w.cost))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for group in bytes.chunks(3) {
            let b = [
                group[0],
                *group.get(1).unwrap_or(&0),
                *group.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= group.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// The header bytes each format starts with (PNG signature + IHDR, GIF89a logical screen,
    /// WebP RIFF chunks, JPEG SOI/APP0/APP1/SOF0), then `body` bytes of image data.
    fn png(w: u32, h: u32, body: usize) -> Vec<u8> {
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        out.extend_from_slice(b"IHDR");
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&h.to_be_bytes());
        out.extend_from_slice(&[8, 2, 0, 0, 0]);
        out.resize(out.len() + body, 0x5a);
        out
    }

    fn jpeg(w: u16, h: u16, exif: usize, body: usize) -> Vec<u8> {
        let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0, 16];
        out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        // An EXIF segment in front of the frame header, as cameras write.
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&((exif + 2) as u16).to_be_bytes());
        out.resize(out.len() + exif, 0x11);
        out.extend_from_slice(&[0xff, 0xdb, 0, 4, 0, 0]); // DQT
        out.extend_from_slice(&[0xff, 0xc2, 0, 17, 8]); // SOF2 (progressive)
        out.extend_from_slice(&h.to_be_bytes());
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        out.resize(out.len() + body, 0x77); // scan data
        out.extend_from_slice(&[0xff, 0xd9]);
        out
    }

    fn gif(w: u16, h: u16) -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&w.to_le_bytes());
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&[0xf7, 0, 0]);
        out
    }

    fn webp(chunk: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = b"RIFF\0\0\0\0WEBP".to_vec();
        out.extend_from_slice(chunk);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn dims(bytes: &[u8]) -> Option<(u32, u32)> {
        dimensions_of(&format!("data:image/x;base64,{}", b64(bytes)))
    }

    #[test]
    fn dimensions_from_each_format_header() {
        assert_eq!(dims(&png(1024, 768, 100)), Some((1024, 768)));
        assert_eq!(dims(&jpeg(4032, 3024, 60_000, 100)), Some((4032, 3024)));
        assert_eq!(dims(&gif(300, 200)), Some((300, 200)));
        // Lossy: frame tag, start code 9d 01 2a, 14-bit width and height.
        let mut vp8 = vec![0x30, 0x01, 0x00, 0x9d, 0x01, 0x2a];
        vp8.extend_from_slice(&500u16.to_le_bytes());
        vp8.extend_from_slice(&400u16.to_le_bytes());
        assert_eq!(dims(&webp(b"VP8 ", &vp8)), Some((500, 400)));
        // Lossless: signature 0x2f, then width-1 and height-1 in 14 bits each.
        let bits: u32 = 499 | (399 << 14);
        let mut vp8l = vec![0x2f];
        vp8l.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(dims(&webp(b"VP8L", &vp8l)), Some((500, 400)));
        // Extended: flags, then width-1 and height-1 in 24 bits each.
        let vp8x = [0x10, 0, 0, 0, 0xcf, 0x07, 0, 0x9f, 0x0f, 0];
        assert_eq!(dims(&webp(b"VP8X", &vp8x)), Some((2000, 4000)));
        // Bare base64 (Anthropic's `source.data`) and cut or unknown data.
        assert_eq!(dimensions_of(&b64(&png(7, 9, 0))), Some((7, 9)));
        assert_eq!(dims(&png(7, 9, 0)[..20]), None);
        assert_eq!(dims(b"not an image at all, just some bytes"), None);
        assert_eq!(dimensions_of("data:image/png;base64,****"), None);
    }

    #[test]
    fn rules_match_the_providers_documented_examples() {
        // OpenAI's worked examples: 1024×1024 high = 765, 2048×4096 high = 1105, low = 85.
        assert_eq!(openai_tokens(1024, 1024, Detail::High), 765);
        assert_eq!(openai_tokens(2048, 4096, Detail::High), 1105);
        assert_eq!(openai_tokens(4096, 8192, Detail::Low), 85);
        // Anthropic's table: 200×200 ≈ 54, 1000×1000 ≈ 1334, 1092×1092 ≈ 1590.
        assert_eq!(anthropic_tokens(200, 200), 54);
        assert_eq!(anthropic_tokens(1000, 1000), 1334);
        assert_eq!(anthropic_tokens(1092, 1092), 1590);
        // Gemini: 258 up to 384×384, else 258 per 768×768 tile.
        assert_eq!(gemini_tokens(384, 384), 258);
        assert_eq!(gemini_tokens(1024, 768), 516);
        // The estimate takes the largest; unreadable images a documented bound.
        assert_eq!(image_tokens(Some((1024, 1024)), Detail::High), 1399);
        assert_eq!(image_tokens(None, Detail::High), UNKNOWN_IMAGE_TOKENS);
    }

    fn scan(body: &str) -> ImageCost {
        serde_json::from_str::<ImageScan>(body).unwrap().0
    }

    #[test]
    fn the_three_client_shapes_are_found_and_their_bytes_left_out() {
        let data = b64(&jpeg(1000, 1000, 40_000, 260_000)); // ~400 KB of base64
        let url = format!("data:image/jpeg;base64,{data}");
        let chat = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"text","text":"what?"}},
            {{"type":"image_url","image_url":{{"url":"{url}","detail":"high"}}}}]}}]}}"#
        );
        let messages = format!(
            r#"{{"model":"m","max_tokens":9,"messages":[{{"role":"user","content":[
            {{"type":"image","source":{{"type":"base64","media_type":"image/jpeg","data":"{data}"}}}},
            {{"type":"text","text":"what?"}}]}}]}}"#
        );
        let responses = format!(
            r#"{{"model":"m","input":[{{"role":"user","content":[{{"type":"input_text","text":"what?"}},
            {{"type":"input_image","image_url":"{url}","detail":"auto"}}]}}]}}"#
        );
        let tokens = image_tokens(Some((1000, 1000)), Detail::High);
        assert_eq!(tokens, 1334);
        for (name, body, bytes) in [
            ("chat", &chat, url.len()),
            ("messages", &messages, data.len()),
            ("responses", &responses, url.len()),
        ] {
            let cost = scan(body);
            assert_eq!(
                cost,
                ImageCost {
                    count: 1,
                    bytes: bytes as u64,
                    tokens
                },
                "{name}"
            );
            // The text around the image still counts bytes / 4.
            let text = (body.len() - bytes).div_ceil(4) as u64;
            assert_eq!(cost.input_tokens(body.len()), text + tokens, "{name}");
            assert!(cost.input_tokens(body.len()) < 2_000, "{name}");
        }
    }

    #[test]
    fn links_low_detail_and_non_images() {
        let cost = scan(
            r#"[{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}},
                {"type":"input_image","image_url":"https://example.com/dog.png"},
                {"type":"image","source":{"type":"url","url":"https://example.com/x.jpg"}},
                {"type":"input_image","file_id":"file-abc"},
                {"type":"text","text":"an image_url, a source and data that are not images"},
                {"type":"tool_result","content":{"data":"AAAA","url":"x"}}]"#,
        );
        assert_eq!(
            cost,
            ImageCost {
                count: 4,
                bytes: 0,
                tokens: 4 * UNKNOWN_IMAGE_TOKENS
            }
        );
        let small = format!(
            r#"{{"type":"image_url","image_url":{{"detail":"low","url":"data:image/png;base64,{}"}}}}"#,
            b64(&png(100, 100, 60))
        );
        // Low detail is 85 at OpenAI, but Gemini counts 258 whatever the detail.
        assert_eq!(scan(&small).tokens, 258);
    }
}
