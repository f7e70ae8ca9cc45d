//! The journal's framing: a file header, then records, each `[length u32][crc32 u32][bytes]`
//! (little endian). A record is only taken whole and with its checksum right, so a record torn
//! by a crash mid-write, or a flipped bit, ends the journal there: everything before it is
//! good, nothing after it is trusted.

/// The first bytes of every journal (and its format version).
pub const MAGIC: &[u8; 8] = b"STAMPJ01";
/// A record larger than this is not one the master wrote.
pub const MAX_RECORD: usize = 64 << 20;

/// Appends one framed record to `out`.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Where and why the good part of a journal ends before its last byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// Bytes of the journal that are good (header and whole records).
    pub good: usize,
    pub why: String,
}

/// The records of a journal's bytes, in order, up to the first that is not whole and right.
pub fn records(bytes: &[u8]) -> Result<(Vec<&[u8]>, Option<Torn>), String> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a stampede journal (its first bytes are not the journal header)".into());
    }
    let mut at = MAGIC.len();
    let mut out = Vec::new();
    while at < bytes.len() {
        let torn = |why: String| Torn { good: at, why };
        let Some(head) = bytes.get(at..at + 8) else {
            return Ok((
                out,
                Some(torn(format!(
                    "{} bytes of a record header",
                    bytes.len() - at
                ))),
            ));
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD {
            return Ok((out, Some(torn(format!("a record of {len} bytes")))));
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            let have = bytes.len() - at - 8;
            return Ok((
                out,
                Some(torn(format!("a record cut at {have} of {len} bytes"))),
            ));
        };
        if crc32fast::hash(payload) != crc {
            return Ok((
                out,
                Some(torn("a record whose checksum does not match".into())),
            ));
        }
        out.push(payload);
        at += 8 + len;
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(records: &[&[u8]]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            frame(r, &mut out);
        }
        out
    }

    #[test]
    fn whole_records_come_back_and_a_cut_at_any_byte_drops_only_the_last() {
        let bytes = journal(&[b"first", b"", b"third record"]);
        let (all, torn) = records(&bytes).unwrap();
        assert_eq!(all, vec![&b"first"[..], b"", b"third record"]);
        assert!(torn.is_none());
        let last_starts = bytes.len() - (8 + 12);
        for cut in last_starts..bytes.len() {
            let (some, torn) = records(&bytes[..cut]).unwrap();
            assert_eq!(some.len(), 2, "cut at {cut}");
            let torn = if cut == last_starts { None } else { torn };
            if cut > last_starts {
                assert_eq!(torn.unwrap().good, last_starts, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_flipped_bit_ends_the_journal_there() {
        let mut bytes = journal(&[b"first", b"second", b"third"]);
        let second = MAGIC.len() + 8 + 5 + 8 + 2;
        bytes[second] ^= 0x04;
        let (some, torn) = records(&bytes).unwrap();
        assert_eq!(some, vec![&b"first"[..]]);
        let torn = torn.unwrap();
        assert_eq!(torn.good, MAGIC.len() + 8 + 5);
        assert!(torn.why.contains("checksum"), "{}", torn.why);
        assert!(records(b"garbage!!").is_err());
    }
}
