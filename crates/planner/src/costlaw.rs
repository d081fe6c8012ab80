//! Cost laws of operators, as data: a fitted law per operator class, and the
//! measured points it was fitted on.
//!
//! A law of one class (linear layers, attention, LayerNorm, ...) on one
//! backend has two parts, both fitted by `fit` from `bench ops` medians:
//!
//! 1. a *base law* `overhead + c_f·GFLOP + c_b·MB + c_d·dispatches`
//!    (non-negative coefficients, fitted on relative error): fixed cost, compute,
//!    memory traffic and per-head or per-sequence kernel launches;
//! 2. a *correction* read from the measured points: the log ratio measured/base
//!    of the points nearby in log size, averaged with Gaussian weights of width
//!    `smoothing` (in ln units, chosen by leave-one-out error). Where a kernel
//!    changes regime — a GEMM that stops splitting across threads, a cache it
//!    outgrows — the points say so, and no threshold is written in code. Far
//!    from the points the nearest ones' correction carries over.
//!
//! Micro-benchmarks run each operator with its operands hot in cache. A step
//! of the whole model streams all its weights (and its KV cache) once, so an
//! operator whose bytes no longer fit is served from further out. Where a
//! *cold* law was measured (the operator with its weights rotated through a
//! set of copies of `cold_working_set_bytes`), the step's time lies between
//! hot and cold by how far the machine's measured bandwidth at the step's
//! working set has fallen from its bandwidth at the operator's own size
//! towards its bandwidth at the cold set's size (`stream` probes, read
//! log-log). Elsewhere the time is `max(hot, bytes / bandwidth(working
//! set))`. Where the cache ends is whatever the curve says on this machine.

use serde::{Deserialize, Serialize};

use crate::operators::{OpClass, OpKind};

/// One measured operator: its kind and sizes, and its median time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LawPoint {
    /// The operator measured.
    pub op: OpKind,
    /// Median time of one run, ms (operands hot).
    pub ms: f64,
}

/// One point of the bandwidth curve: a rotating set of weights of this total
/// size, read by matrix-vector products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamPoint {
    /// Total bytes of the rotating set.
    pub working_set_bytes: u64,
    /// Bytes per millisecond achieved.
    pub bytes_per_ms: f64,
}

/// The base law's coefficients (all ≥ 0).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseLaw {
    /// Fixed cost of one run, ms.
    pub overhead_ms: f64,
    /// ms per GFLOP.
    pub ms_per_gflop: f64,
    /// ms per MB read and written (weights included).
    pub ms_per_mb: f64,
    /// ms per dispatch (sequence of a linear layer, head of attention).
    pub ms_per_dispatch: f64,
}

impl BaseLaw {
    /// The law's features of an operator: 1, GFLOP, MB, dispatches.
    pub fn features(op: &OpKind) -> [f64; 4] {
        let bytes = op.weight_bytes() + op.bytes_read() + op.bytes_written();
        [
            1.0,
            op.flops() as f64 / 1e9,
            bytes as f64 / 1e6,
            op.dispatches() as f64,
        ]
    }

    /// Coefficients in the order of [`BaseLaw::features`].
    pub fn coefficients(&self) -> [f64; 4] {
        [
            self.overhead_ms,
            self.ms_per_gflop,
            self.ms_per_mb,
            self.ms_per_dispatch,
        ]
    }

    /// The base time of one run, ms.
    pub fn ms(&self, op: &OpKind) -> f64 {
        let f = Self::features(op);
        f.iter().zip(self.coefficients()).map(|(x, c)| x * c).sum()
    }
}

/// The fitted law of one operator class (attention: of one causal flag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassLaw {
    /// The class.
    pub class: OpClass,
    /// For attention: causal (prefill) or not (decode); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal: Option<bool>,
    /// Measured with the weights cold (rotated through copies) instead of hot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cold: bool,
    /// The base law.
    pub base: BaseLaw,
    /// Width of the correction's Gaussian weights in ln size; `None`: no correction.
    pub smoothing: Option<f64>,
    /// The measured points.
    pub points: Vec<LawPoint>,
}

impl ClassLaw {
    /// Whether this law prices `op` (hot or cold as `cold` says).
    pub fn covers(&self, op: &OpKind, cold: bool) -> bool {
        self.class == op.class() && self.causal == causal_of(op) && self.cold == cold
    }

    /// The hot time of one run, ms: the base law times the correction of the
    /// points nearby. `exclude` leaves one point out (for leave-one-out error).
    pub fn hot_ms_without(&self, op: &OpKind, exclude: Option<usize>) -> f64 {
        let base = self.base.ms(op).max(1e-9);
        let Some(width) = self.smoothing else {
            return base;
        };
        let at = log_sizes(op);
        let (mut weight_sum, mut log_sum) = (0.0, 0.0);
        let mut nearest = (f64::INFINITY, 0.0);
        for (i, p) in self.points.iter().enumerate() {
            if Some(i) == exclude || p.ms <= 0.0 {
                continue;
            }
            let d2: f64 = log_sizes(&p.op)
                .iter()
                .zip(&at)
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            let log_ratio = (p.ms / self.base.ms(&p.op).max(1e-9)).ln();
            let w = (-d2 / (2.0 * width * width)).exp();
            weight_sum += w;
            log_sum += w * log_ratio;
            if d2 < nearest.0 {
                nearest = (d2, log_ratio);
            }
        }
        let correction = if weight_sum > 1e-300 {
            log_sum / weight_sum
        } else {
            nearest.1
        };
        base * correction.exp()
    }

    /// Whether every size of `op` lies within the range of this law's points.
    pub fn spans(&self, op: &OpKind) -> bool {
        let sizes = op.sizes();
        (0..sizes.len()).all(|i| {
            let column = self.points.iter().filter_map(|p| p.op.sizes().get(i).copied());
            let (lo, hi) = column.fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
            lo <= sizes[i] && sizes[i] <= hi
        })
    }

    /// The hot time of one run, ms.
    pub fn hot_ms(&self, op: &OpKind) -> f64 {
        self.hot_ms_without(op, None)
    }
}

/// The measured cost laws of one backend.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorLaws {
    /// One law per class (and causal flag) measured.
    pub laws: Vec<ClassLaw>,
    /// The bandwidth curve, any order.
    pub streams: Vec<StreamPoint>,
    /// Total bytes of the rotating copies the cold laws were measured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_working_set_bytes: Option<u64>,
    /// Which operators ran on more than one thread, where the cores busy
    /// while each ran were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<crate::parallelism::Parallelism>,
}

/// Why an operator cannot be priced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LawError {
    /// No point of this class (and causal flag) was measured.
    #[error("no `{0}` operator was measured on this backend")]
    NoPoints(&'static str),
}

/// The causal flag of an attention operator (`None` for every other kind):
/// what, besides the class, tells laws apart.
pub fn causal_of(op: &OpKind) -> Option<bool> {
    match op {
        OpKind::Attention { causal, .. } => Some(*causal),
        _ => None,
    }
}

/// The sizes of an operator in ln units (what the correction measures distance in).
pub fn log_sizes(op: &OpKind) -> Vec<f64> {
    op.sizes().into_iter().map(|s| (s.max(1) as f64).ln()).collect()
}

impl OperatorLaws {
    /// One base law, without corrections, for every class and both kinds of
    /// attention: laws of a synthetic backend (tests, examples).
    pub fn uniform(base: BaseLaw) -> Self {
        let law = |class, causal| ClassLaw {
            class,
            causal,
            cold: false,
            base,
            smoothing: None,
            points: vec![],
        };
        let mut laws: Vec<ClassLaw> = OpClass::ALL
            .into_iter()
            .map(|c| law(c, (c == OpClass::Attention).then_some(true)))
            .collect();
        laws.push(law(OpClass::Attention, Some(false)));
        OperatorLaws {
            laws,
            streams: vec![],
            cold_working_set_bytes: None,
            parallelism: None,
        }
    }

    /// The hot law that prices `op`.
    pub fn law_for(&self, op: &OpKind) -> Result<&ClassLaw, LawError> {
        self.laws
            .iter()
            .find(|l| l.covers(op, false))
            .ok_or(LawError::NoPoints(op.class().name()))
    }

    /// The cold law of `op`'s class, where one was measured and `op`'s sizes
    /// lie within its points' (a cold law is not extrapolated: the products of
    /// prefill are not decode's weight streams).
    pub fn cold_law_for(&self, op: &OpKind) -> Option<&ClassLaw> {
        self.laws
            .iter()
            .find(|l| l.covers(op, true))
            .filter(|l| l.spans(op))
    }

    /// How far a step of `working_set` bytes lies from hot (0) to cold (1) for
    /// an operator of `own_bytes`: the fall of the measured bandwidth from the
    /// operator's own size to the step's, over its fall to the cold set's size.
    pub fn cold_share(&self, own_bytes: u64, working_set: u64) -> f64 {
        let (Some(set), Some(own), Some(step)) = (
            self.cold_working_set_bytes,
            self.bandwidth(own_bytes),
            self.bandwidth(working_set),
        ) else {
            return 0.0;
        };
        let cold = self.bandwidth(set).unwrap_or(step);
        let span = own.ln() - cold.ln();
        if span <= 1e-9 {
            // No fall to measure between the two sizes: cold only at the cold set's size.
            return if working_set >= set { 1.0 } else { 0.0 };
        }
        ((own.ln() - step.ln()) / span).clamp(0.0, 1.0)
    }

    /// The hot time of one run of `op`, ms.
    pub fn hot_ms(&self, op: &OpKind) -> Result<f64, LawError> {
        Ok(self.law_for(op)?.hot_ms(op))
    }

    /// Bytes per ms when a step's working set is `bytes` (log-log
    /// interpolation of the stream points, flat beyond the measured ends);
    /// `None` without stream points.
    pub fn bandwidth(&self, bytes: u64) -> Option<f64> {
        let mut pts: Vec<(f64, f64)> = self
            .streams
            .iter()
            .filter(|s| s.bytes_per_ms > 0.0 && s.working_set_bytes > 0)
            .map(|s| ((s.working_set_bytes as f64).ln(), s.bytes_per_ms.ln()))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let x = (bytes.max(1) as f64).ln();
        let (first, last) = (pts.first()?, pts.last()?);
        if x <= first.0 {
            return Some(first.1.exp());
        }
        if x >= last.0 {
            return Some(last.1.exp());
        }
        let w = pts.windows(2).find(|w| x <= w[1].0)?;
        let t = (x - w[0].0) / (w[1].0 - w[0].0).max(f64::MIN_POSITIVE);
        Some((w[0].1 + t * (w[1].1 - w[0].1)).exp())
    }

    /// Time of one run of `op` inside a step whose working set is
    /// `working_set` bytes: between its hot and cold law by
    /// [`OperatorLaws::cold_share`] where a cold law exists, else the hot
    /// time or the time to stream its bytes at that working set's bandwidth,
    /// whichever is longer.
    pub fn op_ms(&self, op: &OpKind, working_set: u64) -> Result<f64, LawError> {
        Ok(self.op_ms_and_cold_gap(op, working_set)?.0)
    }

    /// [`Self::op_ms`], and how much more the run would take fully cold: 0
    /// where no cold law covers `op`. Summed over a step, the gap lets the
    /// calibration weigh what the bandwidth curve's blend misses (a step
    /// cycling through distinct layers' weights and caches evicts more than
    /// one operator measured alone).
    pub fn op_ms_and_cold_gap(&self, op: &OpKind, working_set: u64) -> Result<(f64, f64), LawError> {
        let hot = self.hot_ms(op)?;
        let bytes = op.weight_bytes() + op.bytes_read() + op.bytes_written();
        if let Some(cold_law) = self.cold_law_for(op) {
            let cold = cold_law.hot_ms(op);
            let share = self.cold_share(bytes, working_set);
            let ms = hot + (cold - hot).max(0.0) * share;
            return Ok((ms, (cold - ms).max(0.0)));
        }
        let streamed = self.bandwidth(working_set).map_or(0.0, |bw| bytes as f64 / bw);
        Ok((hot.max(streamed), 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(batch: u64, rows: u64, k: u64, n: u64) -> OpKind {
        OpKind::Linear {
            batch,
            rows,
            k,
            n,
            bias: true,
        }
    }

    fn law(base: BaseLaw, smoothing: Option<f64>, points: Vec<LawPoint>) -> ClassLaw {
        ClassLaw {
            class: OpClass::Linear,
            causal: None,
            cold: false,
            base,
            smoothing,
            points,
        }
    }

    const BASE: BaseLaw = BaseLaw {
        overhead_ms: 0.01,
        ms_per_gflop: 10.0,
        ms_per_mb: 0.0,
        ms_per_dispatch: 0.0,
    };

    #[test]
    fn the_base_law_adds_its_terms() {
        let op = linear(2, 64, 256, 1024);
        let gflop = 2.0 * 2.0 * 64.0 * 256.0 * 1024.0 / 1e9;
        let mb = 4.0 * (256.0 * 1024.0 + 1024.0 + 2.0 * 64.0 * 256.0 + 2.0 * 64.0 * 1024.0) / 1e6;
        let b = BaseLaw {
            ms_per_mb: 0.5,
            ms_per_dispatch: 0.003,
            ..BASE
        };
        assert!((b.ms(&op) - (0.01 + 10.0 * gflop + 0.5 * mb + 0.003 * 2.0)).abs() < 1e-12);
    }

    #[test]
    fn the_correction_follows_the_points_near_the_query_and_carries_past_them() {
        // Measured: twice the base law at the small sizes, the base law at the large ones.
        let small = linear(1, 1, 64, 64);
        let large = linear(1, 512, 1024, 1024);
        let points = vec![
            LawPoint {
                op: small,
                ms: 2.0 * BASE.ms(&small),
            },
            LawPoint {
                op: large,
                ms: BASE.ms(&large),
            },
        ];
        let l = law(BASE, Some(0.5), points);
        assert!((l.hot_ms(&small) / BASE.ms(&small) - 2.0).abs() < 1e-6);
        assert!((l.hot_ms(&large) / BASE.ms(&large) - 1.0).abs() < 1e-6);
        // Far beyond either point the nearest one's correction holds.
        let beyond = linear(1, 4096, 8192, 8192);
        assert!((l.hot_ms(&beyond) / BASE.ms(&beyond) - 1.0).abs() < 1e-6);
        // Without a correction the base law alone prices everything.
        let plain = law(BASE, None, vec![]);
        assert_eq!(plain.hot_ms(&small), BASE.ms(&small));
        // Leaving the small point out, the large one's correction applies there.
        let loo = l.hot_ms_without(&small, Some(0));
        assert!((loo / BASE.ms(&small) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_class_without_a_law_is_an_error() {
        let laws = OperatorLaws {
            laws: vec![law(BASE, None, vec![])],
            streams: vec![],
            cold_working_set_bytes: None,
            parallelism: None,
        };
        assert!(laws.hot_ms(&linear(1, 1, 8, 8)).is_ok());
        let e = laws.hot_ms(&OpKind::Gelu { elements: 10 }).unwrap_err();
        assert_eq!(e.to_string(), "no `gelu` operator was measured on this backend");
    }

    #[test]
    fn streaming_past_the_measured_cache_costs_bytes_over_bandwidth() {
        // 100 GB/s while the set is small, 10 GB/s beyond 64 MB.
        let streams = [
            (8u64 << 20, 1e8),
            (32 << 20, 1e8),
            (128 << 20, 1e7),
            (512 << 20, 1e7),
        ]
        .into_iter()
        .map(|(working_set_bytes, bytes_per_ms)| StreamPoint {
            working_set_bytes,
            bytes_per_ms,
        })
        .collect();
        let laws = OperatorLaws {
            laws: vec![law(BASE, None, vec![])],
            streams,
            cold_working_set_bytes: None,
            parallelism: None,
        };
        let op = linear(1, 1, 1024, 4096);
        let bytes = (op.weight_bytes() + op.bytes_read() + op.bytes_written()) as f64;
        let hot = laws.hot_ms(&op).unwrap();
        let warm = laws.op_ms(&op, 16 << 20).unwrap();
        assert!((warm - hot.max(bytes / 1e8)).abs() < 1e-12);
        let cold = laws.op_ms(&op, 1 << 30).unwrap();
        assert!((cold - bytes / 1e7).abs() < 1e-9, "{cold}");
        assert!(cold > hot);
        // Between measured sizes the curve is read log-log.
        let mid = laws.bandwidth(64 << 20).unwrap();
        assert!((mid / (1e8f64 * 1e7).sqrt() - 1.0).abs() < 1e-9);
        assert_eq!(OperatorLaws::default().bandwidth(1), None);

        // With a cold law, the step lies between hot and cold by the bandwidth's fall.
        let cold_base = BaseLaw {
            overhead_ms: 1.0,
            ..BaseLaw::default()
        };
        let mut with_cold = laws.clone();
        let small = linear(1, 1, 256, 256);
        with_cold.laws.push(ClassLaw {
            cold: true,
            ..law(cold_base, None, vec![LawPoint { op: small, ms: 1.0 }])
        });
        with_cold.cold_working_set_bytes = Some(512 << 20);
        let hot = with_cold.hot_ms(&small).unwrap();
        // Own size and step within the fast part of the curve: hot.
        assert!((with_cold.op_ms(&small, 16 << 20).unwrap() - hot).abs() < 1e-12);
        // At the cold set's size: cold.
        assert!((with_cold.op_ms(&small, 512 << 20).unwrap() - 1.0).abs() < 1e-12);
        // Half-way down the curve (log-log): half-way from hot to cold.
        let half = with_cold.op_ms(&small, 64 << 20).unwrap();
        assert!((half - (hot + 0.5 * (1.0 - hot))).abs() < 1e-9, "{half}");
        // Outside the cold points' sizes (a prefill product) the cold law is not used.
        let prefill = linear(1, 128, 256, 256);
        assert_eq!(
            with_cold.op_ms(&prefill, 512 << 20).unwrap(),
            laws.op_ms(&prefill, 512 << 20).unwrap()
        );
    }

    #[test]
    fn attention_laws_keep_causal_and_non_causal_apart() {
        let at = |causal| OpKind::Attention {
            batch: 1,
            heads: 4,
            q: if causal { 128 } else { 1 },
            kv: 128,
            d_head: 64,
            causal,
        };
        let attention = |causal, overhead_ms| ClassLaw {
            class: OpClass::Attention,
            causal: Some(causal),
            cold: false,
            base: BaseLaw {
                overhead_ms,
                ..BaseLaw::default()
            },
            smoothing: None,
            points: vec![],
        };
        let laws = OperatorLaws {
            laws: vec![attention(true, 1.0), attention(false, 0.1)],
            streams: vec![],
            cold_working_set_bytes: None,
            parallelism: None,
        };
        assert_eq!(laws.hot_ms(&at(true)).unwrap(), 1.0);
        assert_eq!(laws.hot_ms(&at(false)).unwrap(), 0.1);
        let json = serde_json::to_string(&laws).unwrap();
        assert_eq!(serde_json::from_str::<OperatorLaws>(&json).unwrap(), laws);
    }
}
