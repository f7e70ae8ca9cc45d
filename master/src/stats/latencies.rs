//! A report's latency histogram as the master keeps it between decoding and merging: only the
//! buckets that hold counts, as (value, count) pairs, decoded straight from the HdrHistogram V2
//! (+ deflate) bytes. A full histogram at stampede's bounds is ~22,500 counters (180 KB); an
//! interval's series fills a few hundred, so decoding into a full histogram and adding it (which
//! walks every counter) cost the master ~100x more per series than it had to at 1,000 workers.
//!
//! Merging is exact: each pair is recorded at its bucket's lowest value, which lands in the same
//! bucket of the target histogram (every stampede histogram has the same bounds).

use hdrhistogram::Histogram;
use libdeflater::{DecompressionError, Decompressor};
use stampede_proto::hdr;

/// The serialization cookies (HdrHistogram V2, and V2 wrapped in zlib).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// Bytes of the V2 header after the cookie: payload length, normalizing offset, significant
/// digits, lowest and highest trackable values, integer-to-double ratio.
const V2_HEADER: usize = 4 + 4 + 4 + 8 + 8 + 8;
/// Largest inflated payload accepted: a full histogram at 9 bytes per counter, with room.
const MAX_INFLATED: usize = 256 * 1024;
/// Bucketing of stampede's bounds (1 µs … 1 h, 3 significant figures), as hdrhistogram derives
/// it: 2,048 sub-buckets (half of them 1,024 = 2^10), unit 1 µs (2^0).
const SUB_BUCKET_HALF_MAGNITUDE: u32 = 10;
const UNIT_MAGNITUDE: u32 = 0;
/// Counters of a histogram at stampede's bounds (bucket indexes run below it).
pub const COUNTS_LEN: usize = 23_552;

/// Why bytes are not a stampede latency histogram.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LatenciesError {
    #[error("not an HdrHistogram V2 serialization")]
    Cookie,
    #[error("truncated")]
    Truncated,
    #[error("corrupt deflate stream")]
    Deflate,
    #[error("inflates beyond {MAX_INFLATED} bytes")]
    TooLarge,
    #[error("histogram bounds differ from 1 µs … 1 h at 3 figures")]
    Bounds,
    #[error("a count beyond the histogram's range")]
    Range,
    #[error("a malformed count")]
    Varint,
}

/// The non-empty buckets of a latency histogram (µs), in value order, each by its index in a
/// histogram at stampede's bounds (so merging is an addition at that index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    buckets: Vec<(u32, u64)>,
    total: u64,
}

impl Latencies {
    /// Requests counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// (bucket index, count), in index (that is, value) order.
    pub fn buckets(&self) -> &[(u32, u64)] {
        &self.buckets
    }

    /// Latencies from (bucket index, count) pairs, as [`Latencies::buckets`] gives them (a
    /// journal's): indexes past the histogram and empty buckets are left out, the rest put in
    /// order.
    pub fn from_buckets(mut buckets: Vec<(u32, u64)>) -> Latencies {
        buckets.retain(|&(index, count)| (index as usize) < COUNTS_LEN && count > 0);
        buckets.sort_unstable_by_key(|&(index, _)| index);
        let total = buckets.iter().fold(0u64, |t, &(_, c)| t.saturating_add(c));
        Latencies { buckets, total }
    }

    /// Adds `other`'s counts, bucket by bucket: a merge of two sorted lists, so a sparse
    /// histogram (a phase's) stays as small as the buckets it fills.
    pub fn merge(&mut self, other: &Latencies) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other.clone();
            return;
        }
        let mut merged = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x.0 == y.0 => {
                    a.next();
                    b.next();
                    (x.0, x.1.saturating_add(y.1))
                }
                (Some(&&x), Some(&&y)) if x.0 < y.0 => {
                    a.next();
                    x
                }
                (_, Some(&&y)) => {
                    b.next();
                    y
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        self.buckets = merged;
        self.total = self.total.saturating_add(other.total);
    }

    /// The same counts as an hdrhistogram, to read figures from.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = hdr::new_histogram();
        self.add_to(&mut h);
        h
    }

    /// Adds these counts to `h`, which must have stampede's bounds.
    pub fn add_to(&self, h: &mut Histogram<u64>) {
        for &(index, count) in &self.buckets {
            // In range by construction (checked at decode); saturating on the count.
            let _ = h.record_n(value_for(index as usize), count);
        }
    }
}

impl From<&Histogram<u64>> for Latencies {
    fn from(h: &Histogram<u64>) -> Self {
        let buckets: Vec<(u32, u64)> = h
            .iter_recorded()
            .map(|v| {
                let value = h.lowest_equivalent(v.value_iterated_to());
                (index_for(value) as u32, v.count_at_value())
            })
            .collect();
        Latencies {
            total: buckets.iter().map(|b| b.1).sum(),
            buckets,
        }
    }
}

/// Decodes serialized histograms; keeps its inflater and buffer from one to the next (one per
/// thread is enough: decoding never waits).
pub struct Decoder {
    inflater: Decompressor,
    /// Room for the inflated payload; grown (up to the bound) when a payload needs more.
    inflated: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The inflate buffer's first size: an interval's histogram inflates to a few KB.
const FIRST_BUFFER: usize = 16 * 1024;

impl Decoder {
    pub fn new() -> Self {
        Self {
            inflater: Decompressor::new(),
            inflated: vec![0; FIRST_BUFFER],
        }
    }

    /// Decodes a V2 or V2 + deflate serialization with stampede's bounds.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Latencies, LatenciesError> {
        match read_u32(bytes, 0)? {
            V2_COOKIE => parse_v2(&bytes[4..]),
            V2_DEFLATE_COOKIE => {
                let len = read_u32(bytes, 4)? as usize;
                let compressed = bytes.get(8..8 + len).ok_or(LatenciesError::Truncated)?;
                let n = self.inflate(compressed)?;
                let inflated = &self.inflated[..n];
                if read_u32(inflated, 0)? != V2_COOKIE {
                    return Err(LatenciesError::Cookie);
                }
                parse_v2(&inflated[4..])
            }
            _ => Err(LatenciesError::Cookie),
        }
    }

    /// Inflates a zlib stream into the buffer (libdeflate: whole-buffer inflation, cheaper than
    /// a streaming inflater on these small payloads); returns its length.
    fn inflate(&mut self, input: &[u8]) -> Result<usize, LatenciesError> {
        loop {
            match self.inflater.zlib_decompress(input, &mut self.inflated) {
                Ok(n) => return Ok(n),
                Err(DecompressionError::InsufficientSpace) => {
                    if self.inflated.len() >= MAX_INFLATED {
                        return Err(LatenciesError::TooLarge);
                    }
                    let grown = (self.inflated.len() * 4).min(MAX_INFLATED);
                    self.inflated.resize(grown, 0);
                }
                Err(DecompressionError::BadData) => return Err(LatenciesError::Deflate),
            }
        }
    }
}

/// Parses a V2 payload (after its cookie).
fn parse_v2(b: &[u8]) -> Result<Latencies, LatenciesError> {
    let payload_len = read_u32(b, 0)? as usize;
    let normalizing_offset = read_u32(b, 4)?;
    let digits = read_u32(b, 8)?;
    let low = read_u64(b, 12)?;
    let high = read_u64(b, 20)?;
    let ratio = f64::from_bits(read_u64(b, 28)?);
    if normalizing_offset != 0
        || digits != u32::from(hdr::SIGFIG)
        || low != hdr::LOWEST_US
        || high != hdr::HIGHEST_US
        || ratio.to_bits() != 1.0f64.to_bits()
    {
        return Err(LatenciesError::Bounds);
    }
    let mut counts = b
        .get(V2_HEADER..V2_HEADER + payload_len)
        .ok_or(LatenciesError::Truncated)?;
    let mut out = Latencies {
        // About one bucket per two bytes of counts, rarely more.
        buckets: Vec::with_capacity(payload_len / 2),
        total: 0,
    };
    let mut index: usize = 0;
    while let Some(&first) = counts.first() {
        // Most counts and runs fit one byte.
        let zigzag = if first & 0x80 == 0 {
            counts = &counts[1..];
            u64::from(first)
        } else {
            let (zigzag, used) = read_varint(counts)?;
            counts = &counts[used..];
            zigzag
        };
        // Zig-zag: non-negative numbers are counts, negative ones runs of empty buckets.
        let n = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs() as usize);
            // A run of empty buckets past the end is not a histogram of ours either.
            if index > COUNTS_LEN {
                return Err(LatenciesError::Range);
            }
            continue;
        }
        if index >= COUNTS_LEN {
            return Err(LatenciesError::Range);
        }
        if n > 0 {
            let count = n as u64;
            // `index < COUNTS_LEN` (checked above), which fits a u32.
            out.buckets.push((index as u32, count));
            out.total = out.total.saturating_add(count);
        }
        index += 1;
    }
    Ok(out)
}

/// The index of the bucket holding `value` (hdrhistogram's `counts_index_for`, at stampede's
/// bounds); values above the highest trackable land in the last bucket.
pub(super) fn index_for(value: u64) -> usize {
    const SUB_BUCKET_MASK: u64 = (1 << (SUB_BUCKET_HALF_MAGNITUDE + 1)) - 1;
    const LEADING_ZERO_BASE: u32 = 64 - UNIT_MAGNITUDE - (SUB_BUCKET_HALF_MAGNITUDE + 1);
    let bucket = LEADING_ZERO_BASE.saturating_sub((value | SUB_BUCKET_MASK).leading_zeros());
    let sub_bucket = (value >> (bucket + UNIT_MAGNITUDE)) as usize;
    let index = ((bucket as usize + 1) << SUB_BUCKET_HALF_MAGNITUDE) + sub_bucket
        - (1 << SUB_BUCKET_HALF_MAGNITUDE);
    index.min(COUNTS_LEN - 1)
}

/// The lowest value of bucket `index` (hdrhistogram's `value_for`, at stampede's bounds).
pub(super) fn value_for(index: usize) -> u64 {
    let half = 1usize << SUB_BUCKET_HALF_MAGNITUDE;
    let mut bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) as i64 - 1;
    let mut sub_bucket = (index & (half - 1)) + half;
    if bucket < 0 {
        sub_bucket -= half;
        bucket = 0;
    }
    (sub_bucket as u64) << (bucket as u32 + UNIT_MAGNITUDE)
}

/// LEB128, at most 9 bytes (the 9th byte is taken whole), as HdrHistogram writes it.
fn read_varint(b: &[u8]) -> Result<(u64, usize), LatenciesError> {
    let mut value = 0u64;
    for (i, &byte) in b.iter().enumerate().take(9) {
        if i == 8 {
            return Ok((value | (u64::from(byte) << 56), 9));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(LatenciesError::Varint)
}

fn read_u32(b: &[u8], at: usize) -> Result<u32, LatenciesError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(LatenciesError::Truncated)
}

fn read_u64(b: &[u8], at: usize) -> Result<u64, LatenciesError> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or(LatenciesError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{
        Deserializer, Serializer, V2DeflateSerializer, V2Serializer,
    };
    use stampede_proto::hdr::new_histogram;

    fn spread(n: usize, seed: u64) -> Histogram<u64> {
        let mut h = new_histogram();
        let mut state = seed | 1;
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Log-uniform over 1 µs … 1 h, so every bucket size is exercised.
            let exp = state % 32;
            h.saturating_record((1 + (state >> 8) % (1 << exp)).min(hdr::HIGHEST_US));
        }
        h.saturating_record(hdr::HIGHEST_US);
        h.saturating_record(1);
        h
    }

    #[test]
    fn bucketing_constants_match_hdrhistogram() {
        let h = new_histogram();
        assert_eq!(h.distinct_values(), COUNTS_LEN);
        // Every bucket's lowest value maps back to itself, and to its index.
        for index in (0..COUNTS_LEN).step_by(7) {
            let v = value_for(index);
            assert_eq!(h.lowest_equivalent(v), v, "index {index}");
            assert_eq!(index_for(v), index, "value {v}");
            assert_eq!(index_for(h.highest_equivalent(v)), index, "top of {index}");
        }
    }

    /// The oracle is hdrhistogram's own deserializer: both decodings hold the same counts.
    #[test]
    fn decodes_exactly_what_hdrhistogram_decodes() {
        let mut decoder = Decoder::new();
        for seed in 1..20 {
            let h = spread(seed as usize * 500, seed);
            for deflate in [false, true] {
                let mut bytes = Vec::new();
                if deflate {
                    V2DeflateSerializer::new()
                        .serialize(&h, &mut bytes)
                        .unwrap();
                } else {
                    V2Serializer::new().serialize(&h, &mut bytes).unwrap();
                }
                let theirs: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .unwrap();
                let ours = decoder.decode(&bytes).unwrap();
                assert_eq!(ours.len(), theirs.len());
                let mut full = new_histogram();
                ours.add_to(&mut full);
                assert_eq!(full, theirs, "seed {seed} deflate {deflate}");
                assert_eq!(ours, Latencies::from(&theirs));
            }
        }
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let mut decoder = Decoder::new();
        let mut good = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&spread(1000, 3), &mut good)
            .unwrap();
        for cut in 0..good.len() {
            assert!(decoder.decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        assert!(decoder.decode(&flipped).is_err());
        assert_eq!(decoder.decode(b"garbage!"), Err(LatenciesError::Cookie));
        let other = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        let mut bytes = Vec::new();
        V2Serializer::new().serialize(&other, &mut bytes).unwrap();
        assert_eq!(decoder.decode(&bytes), Err(LatenciesError::Bounds));
        // The decoder still works after all that.
        assert_eq!(decoder.decode(&good).unwrap().len(), spread(1000, 3).len());
    }

    /// Merging sparse lists gives the histogram of all the values (the oracle: hdrhistogram).
    #[test]
    fn merging_sparse_latencies_equals_recording_everything() {
        let (a, b) = (spread(3000, 7), spread(2000, 11));
        let mut all = a.clone();
        all.add(&b).unwrap();
        let mut merged = Latencies::from(&a);
        merged.merge(&Latencies::from(&b));
        merged.merge(&Latencies::default());
        assert_eq!(merged.histogram(), all);
        assert_eq!(merged.len(), all.len());
        let mut empty = Latencies::default();
        empty.merge(&Latencies::from(&b));
        assert_eq!(empty.histogram(), b);
    }
}
