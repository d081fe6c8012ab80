//! What a shape is judged by: prefill latency, decode latency per token, or
//! the end-to-end time of a prompt and its generated tokens.

use serde::{Deserialize, Serialize};

use crate::features::term_value_in;
use crate::model::LatencyModel;
use crate::profile::BackendProfile;
use crate::shape::Shape;

/// The latency a shape is ranked by. The shape's `seq` is the prompt length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Objective {
    /// One forward pass over the prompt (ms).
    Prefill,
    /// One generated token per sequence at KV-cache context `context` (ms).
    Decode {
        /// Tokens in the cache, the new one included.
        context: u64,
    },
    /// Prefill of the prompt, then `output` tokens decoded one by one, the
    /// context growing from prompt+1 to prompt+output (ms in all).
    EndToEnd {
        /// Generated tokens per sequence.
        output: u64,
    },
}

impl Objective {
    /// Short description for tables and chart titles.
    pub fn label(self) -> String {
        match self {
            Objective::Prefill => "prefill latency".into(),
            Objective::Decode { context } => format!("decode latency per token at context {context}"),
            Objective::EndToEnd { output } => format!("end-to-end time (prefill + {output} tokens)"),
        }
    }

    /// Whether `backend` has the model this objective needs.
    pub fn supported_by(self, backend: &BackendProfile) -> bool {
        matches!(self, Objective::Prefill) || backend.decode.is_some()
    }

    /// Predicted ms on `backend`, or `None` where it has no decode model or a
    /// context does not fit the shape's positions.
    pub fn latency_ms(self, backend: &BackendProfile, shape: &Shape) -> Option<f64> {
        let positive = |ms: f64| ms.max(f64::MIN_POSITIVE);
        match self {
            Objective::Prefill => Some(positive(backend.model.predict_ms(shape))),
            Objective::Decode { context } => {
                let decode = backend.decode.as_ref()?;
                Some(positive(decode.model.predict_ms(&shape.with_seq(context).ok()?)))
            }
            Objective::EndToEnd { output } => {
                let prefill = positive(backend.model.predict_ms(shape));
                let per_token = mean_decode_ms(backend, shape, output)?;
                Some(prefill + output as f64 * per_token)
            }
        }
    }
}

impl Objective {
    /// Expected error (%) of [`Objective::latency_ms`] on `backend`
    /// ([`crate::confidence`]); end to end, the two phases' errors weighted
    /// by their shares of the time (decode's taken at the middle context).
    pub fn expected_error_pct(self, backend: &BackendProfile, shape: &Shape) -> Option<f64> {
        self.error_pct(backend, shape, crate::confidence::expected_error_pct)
    }

    /// As [`Objective::expected_error_pct`] without the session spread: the
    /// error of comparing two shapes measured in one session on one backend
    /// (a session's level moves both alike).
    pub fn shape_error_pct(self, backend: &BackendProfile, shape: &Shape) -> Option<f64> {
        self.error_pct(backend, shape, crate::confidence::shape_error_pct)
    }

    fn error_pct(
        self,
        backend: &BackendProfile,
        shape: &Shape,
        expected_error_pct: fn(&BackendProfile, &Shape) -> f64,
    ) -> Option<f64> {
        match self {
            Objective::Prefill => Some(expected_error_pct(backend, shape)),
            Objective::Decode { context } => Some(expected_error_pct(
                backend.decode.as_ref()?,
                &shape.with_seq(context).ok()?,
            )),
            Objective::EndToEnd { output } => {
                let decode = backend.decode.as_ref()?;
                let prefill_ms = backend.model.predict_ms(shape).max(0.0);
                let decode_ms = output as f64 * mean_decode_ms(backend, shape, output)?.max(0.0);
                let middle = shape.with_seq(shape.seq() + output.max(1).div_ceil(2)).ok()?;
                let (e_prefill, e_decode) = (
                    expected_error_pct(backend, shape),
                    expected_error_pct(decode, &middle),
                );
                let total = prefill_ms + decode_ms;
                if total <= 0.0 {
                    return Some(e_prefill.max(e_decode));
                }
                Some((prefill_ms * e_prefill + decode_ms * e_decode) / total)
            }
        }
    }
}

/// Mean decode ms per token over contexts prompt+1 ..= prompt+output.
pub fn mean_decode_ms(backend: &BackendProfile, shape: &Shape, output: u64) -> Option<f64> {
    let decode = backend.decode.as_ref()?;
    let output = output.max(1);
    let total = summed_decode_ms(&decode.model, shape, shape.seq() + 1, shape.seq() + output)?;
    Some(total / output as f64)
}

/// Σ decode ms over contexts `first ..= last`, exactly, from a handful of
/// predictions: every decode term is constant or linear in the context except
/// the cache-cliff terms, which jump once where the working set outgrows
/// their cache size. The range is cut at those jumps (found by bisection) and
/// each linear piece is summed in closed form (count × mean of its ends).
fn summed_decode_ms(model: &LatencyModel, shape: &Shape, first: u64, last: u64) -> Option<f64> {
    let at = |c: u64| shape.with_seq(c).ok();
    let ms = |c: u64| Some(model.predict_ms(&at(c)?).max(f64::MIN_POSITIVE));
    if matches!(model, LatencyModel::Operators { .. }) {
        // Operator laws bend smoothly with the context (bandwidth against
        // working set, measured corrections): a trapezoid over 32 pieces.
        let pieces = (last - first).min(32);
        if pieces == 0 {
            return ms(first);
        }
        let mut total = 0.0;
        let mut prev = (first, ms(first)?);
        for i in 1..=pieces {
            let c = first + (last - first) * i / pieces;
            let now = (c, ms(c)?);
            // Contexts prev.0 + 1 ..= c, the end of the piece counted in it.
            total += (c - prev.0) as f64 * (prev.1 + now.1) / 2.0;
            prev = now;
        }
        // The first context itself.
        return Some(total + ms(first)?);
    }
    let mut starts = vec![first];
    if let LatencyModel::Physics { terms, parallelism } = model {
        for t in terms.iter().filter(|t| t.term.is_cache_cliff()) {
            let on = |c: u64| at(c).is_some_and(|s| term_value_in(t.term, &s, parallelism.as_ref()) > 0.0);
            if on(first) || !on(last) {
                continue;
            }
            // The working set grows with c: find the first context past the cliff.
            let (mut off, mut on_at) = (first, last);
            while on_at - off > 1 {
                let mid = off + (on_at - off) / 2;
                if on(mid) { on_at = mid } else { off = mid }
            }
            starts.push(on_at);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let mut total = 0.0;
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(last, |next| next - 1);
        total += (end - start + 1) as f64 * (ms(start)? + ms(end)?) / 2.0;
    }
    Some(total)
}
