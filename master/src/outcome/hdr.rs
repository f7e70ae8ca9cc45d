//! Latency histograms as text: base64 of the HdrHistogram V2 + deflate serialization, the form
//! the summary carries them in so that nothing is lost and any HdrHistogram tool can read them.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Why a histogram could not be read back.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Hdr64Error {
    #[error("not base64: {0}")]
    Base64(String),
    #[error("not an HdrHistogram V2 serialization: {0}")]
    Histogram(String),
}

/// base64 of the V2 + deflate serialization.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail for a histogram within its own bounds; an empty string
    // would only mean "no histogram", never a wrong one.
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The histogram back from [`encode`]'s text.
pub fn decode(text: &str) -> Result<Histogram<u64>, Hdr64Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| Hdr64Error::Base64(e.to_string()))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| Hdr64Error::Histogram(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_proto::hdr::new_histogram;

    #[test]
    fn round_trip_is_exact_and_garbage_is_an_error() {
        let mut h = new_histogram();
        for v in [1, 10, 999, 123_456, 3_000_000] {
            h.record(v).unwrap();
        }
        assert_eq!(decode(&encode(&h)).unwrap(), h);
        assert!(matches!(decode("%%%"), Err(Hdr64Error::Base64(_))));
        assert!(matches!(decode("AAAA"), Err(Hdr64Error::Histogram(_))));
    }
}
