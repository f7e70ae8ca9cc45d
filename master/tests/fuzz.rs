//! Mutation fuzzing of the two parsers that read untrusted input: the scenario loader and the
//! report decoder. Valid inputs are mutated at random (byte flips, insertions, deletions,
//! splices, truncations); every result must be a value or an error, never a panic.
//!
//! A short run is part of `cargo test`; for a long one:
//! `FUZZ_ITERATIONS=1000000 cargo test --release --test fuzz -- --nocapture`
//! (`FUZZ_SEED=N` replays a run).

use std::path::Path;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use prost::Message;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stampede_master::scenario;
use stampede_master::wire::decode;
use stampede_proto as pb;

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn rng() -> SmallRng {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("FUZZ_SEED={seed}");
    SmallRng::seed_from_u64(seed)
}

/// One to four random edits of `input`.
fn mutate(rng: &mut SmallRng, input: &[u8], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=out.len());
        match rng.random_range(0..6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => out.insert(at, rng.random()),
            2 if at < out.len() => {
                let end = (at + rng.random_range(1..16)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let word = dictionary[rng.random_range(0..dictionary.len())];
                out.splice(at..at, word.iter().copied());
            }
            4 => out.truncate(at),
            _ => {
                let i = at.min(out.len().saturating_sub(1));
                if let Some(b) = out.get_mut(i) {
                    *b = [0, 0xff, 0x7f, 0x80, b'"', b'=', b'\n', b'['][rng.random_range(0..8)];
                }
            }
        }
    }
    out
}

const SCENARIO: &str = r#"
name = "fuzz"
run_time = "10s"
report_interval = "1s"
[[target]]
name = "arm"
url = "http://127.0.0.1:8081/arm"
arch = "arm64"
weight = 2
[[request]]
name = "r"
method = "GET"
path = "/runtime?dim=10"
timeout = "2s"
expect = [200]
headers = { "authorization" = "Bearer x" }
[load]
users = 5
spawn_rate = 2
wait = { kind = "between", min = "10ms", max = "20ms" }
[[stage]]
duration = "5s"
users = 10
[thresholds]
"arch:arm64/p99" = "< 500ms"
"#;

#[test]
fn the_scenario_loader_never_panics() {
    let mut rng = rng();
    let words: &[&[u8]] = &[
        b"[[target]]",
        b"[[stage]]",
        b"users = ",
        b"\"1e400\"",
        b"-1",
        b"18446744073709551616",
        b"\"0ns\"",
        b"\"99999999999h\"",
        b"{ kind = \"exponential\" }",
        b"\"http://[::1\"",
        b"\xf0\x9f\x92\xa9",
        b"=",
        b"\"\"\"",
    ];
    let overrides = ["load.users=3".to_owned()];
    let path = Path::new("fuzz.toml");
    assert!(scenario::parse(path, SCENARIO, &overrides).is_ok());
    let mut ok = 0;
    for _ in 0..iterations() {
        let bytes = mutate(&mut rng, SCENARIO.as_bytes(), words);
        let text = String::from_utf8_lossy(&bytes);
        if scenario::parse(path, &text, &overrides).is_ok() {
            ok += 1;
        }
    }
    eprintln!(
        "{ok} of {} mutated scenarios were still valid",
        iterations()
    );
}

fn valid_report() -> Vec<u8> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for v in [10, 200, 3_000, 40_000, 500_000] {
        h.record(v).unwrap();
    }
    let mut hdr = Vec::new();
    V2DeflateSerializer::new().serialize(&h, &mut hdr).unwrap();
    pb::Report {
        run_id: "run".into(),
        worker_id: "w".into(),
        seq: 3,
        start_ms: 1000,
        end_ms: 2000,
        users: 4,
        series: vec![pb::Series {
            target: 0,
            arch: "arm64".into(),
            outcome: pb::Outcome::Status2xx as i32,
            count: 5,
            hdr,
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn the_report_decoder_never_panics() {
    let mut rng = rng();
    let words: &[&[u8]] = &[
        &[0xff; 9],
        &[0x1c, 0x84, 0x93, 0x14],
        &[0x78, 0x9c],
        &[0; 8],
    ];
    let valid = valid_report();
    let report = pb::Report::decode(valid.as_slice()).unwrap();
    assert!(decode::decode(report.clone()).is_ok());
    let hdr = report.series[0].hdr.clone();
    let (mut decoded, mut accepted) = (0, 0);
    for i in 0..iterations() {
        // Half the time the whole message, half the time only the histogram bytes.
        let candidate = if i % 2 == 0 {
            match pb::Report::decode(mutate(&mut rng, &valid, words).as_slice()) {
                Ok(r) => r,
                Err(_) => continue,
            }
        } else {
            let mut r = report.clone();
            r.series[0].hdr = mutate(&mut rng, &hdr, words);
            r
        };
        decoded += 1;
        if let Ok(r) = decode::decode(candidate) {
            accepted += 1;
            // Whatever is accepted is consistent.
            for s in &r.series {
                assert_eq!(s.hist.len(), s.count);
            }
        }
    }
    eprintln!("{decoded} mutated reports decoded by prost, {accepted} accepted");
}
