//! Realistic interval histograms, serialized once (plain V2 as workers send them, or V2 + deflate
//! as they did before) and reused,
//! so the swarm spends its CPU on the protocol, not on making up numbers.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer, V2Serializer};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, LogNormal};
use stampede_proto::{Outcome, Series, hdr};

/// Variants of each (arch, outcome) histogram, so reports are not all alike.
const VARIANTS: usize = 8;

/// Every outcome class, with its share of the requests and its median latency (ms).
const OUTCOMES: [(Outcome, f64, f64); 9] = [
    (Outcome::Status1xx, 0.001, 2.0),
    (Outcome::Status2xx, 0.90, 20.0),
    (Outcome::Status3xx, 0.03, 5.0),
    (Outcome::Status4xx, 0.01, 3.0),
    (Outcome::Status5xx, 0.03, 40.0),
    (Outcome::ErrorConnect, 0.005, 1.0),
    (Outcome::ErrorReset, 0.005, 15.0),
    (Outcome::ErrorTimeout, 0.01, 10_000.0),
    (Outcome::ErrorOther, 0.009, 8.0),
];

struct Encoded {
    arch: String,
    outcome: Outcome,
    count: u64,
    hdr: Vec<u8>,
}

/// Serialized histograms per (variant, arch, outcome).
pub struct Payloads {
    variants: Vec<Vec<Encoded>>,
}

impl Payloads {
    /// Histograms for `requests` requests per report, spread over the arches and outcomes.
    pub fn generate(arches: &[String], requests: u64, deflate: bool) -> Self {
        let mut rng = SmallRng::seed_from_u64(7);
        let per_arch = requests as f64 / arches.len().max(1) as f64;
        let variants = (0..VARIANTS)
            .map(|_| {
                let mut out = Vec::new();
                for arch in arches {
                    for (outcome, share, median_ms) in OUTCOMES {
                        let count = ((per_arch * share).round() as u64).max(1);
                        let mut h = Histogram::<u64>::new_with_bounds(
                            hdr::LOWEST_US,
                            hdr::HIGHEST_US,
                            hdr::SIGFIG,
                        )
                        .expect("constant bounds");
                        let dist = LogNormal::new((median_ms * 1000.0).ln(), 0.6)
                            .expect("valid lognormal");
                        for _ in 0..count {
                            h.saturating_record((dist.sample(&mut rng) as u64).max(1));
                        }
                        let mut hdr = Vec::new();
                        if deflate {
                            V2DeflateSerializer::new()
                                .serialize(&h, &mut hdr)
                                .expect("serializing into a Vec");
                        } else {
                            V2Serializer::new()
                                .serialize(&h, &mut hdr)
                                .expect("serializing into a Vec");
                        }
                        out.push(Encoded {
                            arch: arch.clone(),
                            outcome,
                            count,
                            hdr,
                        });
                    }
                }
                out
            })
            .collect();
        Self { variants }
    }

    /// Series per target in one report.
    pub fn per_target(&self) -> usize {
        self.variants[0].len()
    }

    /// Histogram bytes of one target's series in one report (the first variant).
    pub fn bytes_per_target(&self) -> usize {
        self.variants[0].iter().map(|e| e.hdr.len()).sum()
    }

    /// The series of one report for `targets` targets; `pick` chooses the variant.
    pub fn series(&self, targets: u32, pick: usize) -> Vec<Series> {
        let mut out = Vec::with_capacity(targets as usize * self.per_target());
        for target in 0..targets {
            let variant = &self.variants[(pick + target as usize) % VARIANTS];
            out.extend(variant.iter().map(|e| Series {
                target,
                arch: e.arch.clone(),
                outcome: e.outcome as i32,
                unexpected: !matches!(e.outcome, Outcome::Status2xx | Outcome::Status3xx),
                count: e.count,
                hdr: e.hdr.clone(),
                request: 0,
            }));
        }
        out
    }
}
