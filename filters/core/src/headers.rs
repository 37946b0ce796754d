//! Request and response header maps as filters read them from the host, and the serialized
//! map form the proxy-wasm ABI exchanges. The facts filters hand each other are not headers:
//! see [`crate::facts`].

/// A header map as one host call returned it (names lower-cased, in order, pseudo-headers
/// included): filters read what they need from this one copy instead of asking Envoy once per
/// header. Every name and value sits in one string (two allocations, not two per header), read
/// from Envoy's bytes without the SDK's `unwrap`s. Not faster: bench/instructions.py counts the
/// same instructions per request for the chain either way (the UTF-8 check and the copy are
/// what a map read costs in the VM, not the allocations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    text: String,
    /// Where each header's name and value end in `text`; a name starts where the previous
    /// value ended.
    ends: Vec<(u32, u32)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// A map of the (name, value) pairs a host hands over as bytes, in order: sized up front
    /// and checked as UTF-8 in one pass over all of it (one `from_utf8` per name and value cost
    /// the native build ~90 instructions each, 160 a request), lossily header by header only
    /// when that check fails.
    pub fn from_pairs<'a, I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
        I::IntoIter: Clone,
    {
        let pairs = pairs.into_iter();
        let (bytes, count) = pairs.clone().fold((0, 0), |(bytes, count), (name, value)| {
            (bytes + name.len() + value.len(), count + 1)
        });
        let mut raw = Vec::with_capacity(bytes);
        let mut ends = Vec::with_capacity(count);
        for (name, value) in pairs.clone() {
            raw.extend_from_slice(name);
            let name_end = raw.len() as u32;
            raw.extend_from_slice(value);
            ends.push((name_end, raw.len() as u32));
        }
        if let Ok(text) = String::from_utf8(raw) {
            // Valid as a whole, and no character straddles a name and a value.
            let split = |&(name_end, value_end): &(u32, u32)| {
                text.is_char_boundary(name_end as usize)
                    && text.is_char_boundary(value_end as usize)
            };
            if ends.iter().all(split) {
                return Self { text, ends };
            }
        }
        let mut map = Self {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(count),
        };
        for (name, value) in pairs {
            map.push(name, value);
        }
        map
    }

    /// The first value of header `name`, in any case.
    pub fn get(&self, name: &str) -> Option<&str> {
        // Lengths first, and a value sliced only for the name that matches: filters look up a
        // few headers in every map (~400 instructions a lookup through `iter`, natively).
        let mut start = 0;
        for &(name_end, value_end) in &self.ends {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            if name_end.saturating_sub(start) == name.len()
                && self
                    .text
                    .get(start..name_end)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            {
                return Some(self.text.get(name_end..value_end).unwrap_or_default());
            }
            start = value_end;
        }
        None
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let pair = (
                self.text.get(start..name_end).unwrap_or_default(),
                self.text.get(name_end..value_end).unwrap_or_default(),
            );
            start = value_end;
            pair
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Append a header. A value that is not UTF-8 (HTTP lets a client send obs-text bytes) is
    /// kept lossily: llmgw matches no such value, and refusing it is the application's call.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.text.push_str(&String::from_utf8_lossy(name));
        let name_end = self.text.len() as u32;
        self.text.push_str(&String::from_utf8_lossy(value));
        self.ends.push((name_end, self.text.len() as u32));
    }

    /// Remove every value of header `name`, in any case; the others keep their order.
    pub fn remove(&mut self, name: &str) {
        if self.get(name).is_some() {
            *self = self
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
                .collect();
        }
    }

    /// A map in proxy-wasm's serialized form, as `proxy_get_header_map_pairs` returns it: the
    /// pair count (u32 LE), each pair's name and value sizes (u32 LE each), then each name and
    /// value followed by a NUL. `None` when the buffer does not hold what its sizes say.
    ///
    /// <https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_get_header_map_pairs>
    pub fn from_wire(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return Some(Self::new());
        }
        let word = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let count = word(0)?;
        let mut data = count.checked_mul(8)?.checked_add(4)?;
        if data > bytes.len() {
            return None;
        }
        let mut map = Self {
            text: String::with_capacity(bytes.len() - data),
            ends: Vec::with_capacity(count),
        };
        let mut take = |size: usize| -> Option<&[u8]> {
            let field = bytes.get(data..data.checked_add(size)?)?;
            data += size + 1; // the NUL after each name and value
            Some(field)
        };
        for pair in 0..count {
            let name = take(word(4 + pair * 8)?)?;
            let value = take(word(8 + pair * 8)?)?;
            map.push(name, value);
        }
        Some(map)
    }
}

/// `pairs` in proxy-wasm's serialized map form, the inverse of [`HeaderMap::from_wire`]: what
/// `proxy_send_local_response` takes for the local response's headers (and `proxy_grpc_call` for
/// initial metadata). Sizes are u32 on the wire, so `None` when one does not fit (a name or value
/// of 4 GiB: only possible natively, never in a wasm32 VM).
///
/// <https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_send_local_response>
pub fn to_wire<V: AsRef<[u8]>>(pairs: &[(&str, V)]) -> Option<Vec<u8>> {
    let size = |n: usize| u32::try_from(n).ok().map(u32::to_le_bytes);
    // 8 bytes of sizes and 2 NULs per pair: a capacity hint only, dropped should it overflow.
    let total = pairs.iter().try_fold(4usize, |total, (name, value)| {
        total
            .checked_add(name.len())?
            .checked_add(value.as_ref().len())?
            .checked_add(10)
    });
    let mut out = Vec::with_capacity(total.unwrap_or(0));
    out.extend(size(pairs.len())?);
    for (name, value) in pairs {
        out.extend(size(name.len())?);
        out.extend(size(value.as_ref().len())?);
    }
    for (name, value) in pairs {
        out.extend(name.as_bytes());
        out.push(0);
        out.extend(value.as_ref());
        out.push(0);
    }
    Some(out)
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut map = Self::new();
        for (name, value) in pairs {
            map.push(name.as_ref().as_bytes(), value.as_ref().as_bytes());
        }
        map
    }
}

/// The first value of header `name` in `all`.
pub fn find<'a>(all: &'a HeaderMap, name: &str) -> Option<&'a str> {
    all.get(name)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn remove_drops_every_value_of_a_header_and_keeps_the_order_of_the_rest() {
        let mut all: HeaderMap = [("a", "1"), ("Cookie", "x"), ("b", "2"), ("cookie", "y")]
            .into_iter()
            .collect();
        all.remove("COOKIE");
        assert_eq!(all.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        all.remove("absent");
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn find_takes_the_first_value_of_a_header_in_any_case() {
        let all: HeaderMap = [
            (":path", "/v1/models"),
            ("X-Llmgw-Consumer", "alice"),
            ("x-llmgw-consumer", "bob"),
        ]
        .into_iter()
        .collect();
        assert_eq!(find(&all, "x-llmgw-consumer"), Some("alice"));
        assert_eq!(find(&all, ":path"), Some("/v1/models"));
        assert_eq!(find(&all, "x-llmgw-team"), None);
        let names: Vec<&str> = all.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [":path", "X-Llmgw-Consumer", "x-llmgw-consumer"]);
    }

    /// proxy-wasm's serialized header map, as Envoy writes it.
    fn wire(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (name, value) in pairs {
            out.extend((name.len() as u32).to_le_bytes());
            out.extend((value.len() as u32).to_le_bytes());
        }
        for (name, value) in pairs {
            out.extend(*name);
            out.push(0);
            out.extend(*value);
            out.push(0);
        }
        out
    }

    #[test]
    fn wire_maps_are_read_whole_and_values_that_are_not_utf8_lossily() {
        let bytes = wire(&[
            (b":status", b"200"),
            (b"x-note", b"caf\xe9"),
            (b"empty", b""),
            (b"content-type", b"application/json"),
        ]);
        let map = HeaderMap::from_wire(&bytes).unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(":status"), Some("200"));
        assert_eq!(map.get("x-note"), Some("caf\u{fffd}"));
        assert_eq!(map.get("empty"), Some(""));
        assert_eq!(map.get("content-type"), Some("application/json"));
        assert_eq!(HeaderMap::from_wire(&[]), Some(HeaderMap::new()));
        assert_eq!(HeaderMap::from_wire(&wire(&[])).map(|m| m.len()), Some(0));
    }

    #[test]
    fn maps_from_pairs_equal_maps_pushed_pair_by_pair() {
        let cases: [&[(&[u8], &[u8])]; 4] = [
            &[
                (b":path", b"/v1/chat"),
                (b"x-note", b"caf\xc3\xa9"),
                (b"empty", b""),
            ],
            // Not UTF-8: lossy, header by header.
            &[(b"x-note", b"caf\xe9"), (b"host", b"a")],
            // Valid as a whole, but a character straddles a name and its value.
            &[(b"a\xc3", b"\xa9b"), (b"host", b"a")],
            &[],
        ];
        for pairs in cases {
            let mut pushed = HeaderMap::new();
            for (name, value) in pairs {
                pushed.push(name, value);
            }
            let map = HeaderMap::from_pairs(pairs.iter().map(|&(n, v)| (n, v)));
            assert_eq!(map, pushed);
        }
        let straddled = HeaderMap::from_pairs([(&b"a\xc3"[..], &b"\xa9b"[..])]);
        assert_eq!(straddled.iter().next(), Some(("a\u{fffd}", "\u{fffd}b")));
    }

    #[test]
    fn wire_maps_that_do_not_hold_what_their_sizes_say_are_refused() {
        let good = wire(&[(b"a", b"1"), (b"bb", b"22")]);
        for cut in 1..good.len() - 1 {
            assert_eq!(HeaderMap::from_wire(&good[..cut]), None, "cut at {cut}");
        }
        // A count no buffer could hold does not make the reader allocate for it.
        assert_eq!(HeaderMap::from_wire(&u32::MAX.to_le_bytes()), None);
        let mut huge_size = good.clone();
        huge_size[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::from_wire(&huge_size), None);
    }

    #[test]
    fn pairs_are_serialized_as_the_host_reads_them() {
        // Written out by hand from the spec: count, each pair's sizes, then NUL-ended fields.
        let expected: &[u8] = &[
            2, 0, 0, 0, // two pairs
            12, 0, 0, 0, 16, 0, 0, 0, // "content-type", "application/json"
            4, 0, 0, 0, 0, 0, 0, 0, // "x-id", ""
            b'c', b'o', b'n', b't', b'e', b'n', b't', b'-', b't', b'y', b'p', b'e', 0, //
            b'a', b'p', b'p', b'l', b'i', b'c', b'a', b't', b'i', b'o', b'n', b'/', b'j', b's',
            b'o', b'n', 0, //
            b'x', b'-', b'i', b'd', 0, //
            0,
        ];
        let pairs = [("content-type", "application/json"), ("x-id", "")];
        assert_eq!(to_wire(&pairs).unwrap(), expected);
        assert_eq!(to_wire::<&str>(&[]).unwrap(), [0, 0, 0, 0]);
        // Byte values (gRPC metadata) serialize the same way.
        let bytes: [(&str, &[u8]); 1] = [("x-bin", b"\x00\xff")];
        assert_eq!(to_wire(&bytes).unwrap(), wire(&[(b"x-bin", b"\x00\xff")]));
    }

    #[test]
    fn serialized_pairs_read_back_whole() {
        let pairs = [(":status", "429"), ("retry-after", "1"), ("x-note", "café")];
        let map = HeaderMap::from_wire(&to_wire(&pairs).unwrap()).unwrap();
        let back: Vec<(&str, &str)> = map.iter().collect();
        assert_eq!(back, pairs);
    }
}
