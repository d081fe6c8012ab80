//! Small dense least squares: Householder QR, and non-negative least squares
//! (Lawson & Hanson, 1974) on top of it. Problems here have at most a dozen
//! columns and a few hundred rows; columns are scaled to unit norm first so
//! that terms of very different magnitudes (GFLOP vs layers) stay well
//! conditioned.

/// Solves min ‖A·x − y‖₂ for the given columns of A; `None` if rank deficient.
pub fn lstsq(columns: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let p = columns.len();
    let m = y.len();
    if p == 0 {
        return Some(vec![]);
    }
    if m < p || columns.iter().any(|c| c.len() != m) {
        return None;
    }
    let norms: Vec<f64> = columns
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    if norms.iter().any(|&n| n == 0.0 || !n.is_finite()) {
        return None;
    }
    // a: column-major m×p, scaled.
    let mut a: Vec<Vec<f64>> = columns
        .iter()
        .zip(&norms)
        .map(|(c, n)| c.iter().map(|v| v / n).collect())
        .collect();
    let mut b = y.to_vec();
    for k in 0..p {
        let norm = a[k][k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm < 1e-12 {
            return None;
        }
        let alpha = if a[k][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = a[k][k..].to_vec();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|x| x * x).sum();
        if vnorm2 == 0.0 {
            continue;
        }
        for col in a.iter_mut().skip(k) {
            let dot: f64 = v.iter().zip(&col[k..]).map(|(x, y)| x * y).sum();
            let f = 2.0 * dot / vnorm2;
            for (c, x) in col[k..].iter_mut().zip(&v) {
                *c -= f * x;
            }
        }
        let dot: f64 = v.iter().zip(&b[k..]).map(|(x, y)| x * y).sum();
        let f = 2.0 * dot / vnorm2;
        for (c, x) in b[k..].iter_mut().zip(&v) {
            *c -= f * x;
        }
    }
    // Relative rank check on the diagonal of R.
    let max_diag = (0..p).map(|k| a[k][k].abs()).fold(0.0, f64::max);
    if (0..p).any(|k| a[k][k].abs() < 1e-10 * max_diag) {
        return None;
    }
    let mut x = vec![0.0; p];
    for k in (0..p).rev() {
        let s: f64 = (k + 1..p).map(|j| a[j][k] * x[j]).sum();
        x[k] = (b[k] - s) / a[k][k];
    }
    Some(x.iter().zip(&norms).map(|(v, n)| v / n).collect())
}

/// Solves min ‖A·x − y‖₂ subject to x ≥ 0 (Lawson–Hanson active set).
pub fn nnls(columns: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let p = columns.len();
    let m = y.len();
    let mut x = vec![0.0; p];
    let mut passive = vec![false; p];
    // Columns found dependent on the passive set are never tried again.
    let mut rejected = vec![false; p];
    let residual = |x: &[f64]| -> Vec<f64> {
        (0..m)
            .map(|i| y[i] - (0..p).map(|j| columns[j][i] * x[j]).sum::<f64>())
            .collect()
    };
    let tol = 1e-12 * y.iter().map(|v| v.abs()).sum::<f64>().max(1.0);
    for _ in 0..(3 * p + 10) {
        let r = residual(&x);
        let w: Vec<f64> = (0..p)
            .map(|j| columns[j].iter().zip(&r).map(|(a, b)| a * b).sum())
            .collect();
        let candidate = (0..p)
            .filter(|&j| !passive[j] && !rejected[j] && w[j] > tol)
            .max_by(|&a, &b| w[a].total_cmp(&w[b]));
        let Some(j) = candidate else { break };
        passive[j] = true;
        // Inner loop: keep the passive set feasible.
        loop {
            let idx: Vec<usize> = (0..p).filter(|&k| passive[k]).collect();
            let cols: Vec<Vec<f64>> = idx.iter().map(|&k| columns[k].clone()).collect();
            let Some(z) = lstsq(&cols, y) else {
                // Dependent column: drop the one just added.
                passive[j] = false;
                rejected[j] = true;
                break;
            };
            if z.iter().all(|&v| v > 0.0) {
                for (&k, &v) in idx.iter().zip(&z) {
                    x[k] = v;
                }
                break;
            }
            // Step towards z until a variable hits zero.
            let mut alpha = 1.0f64;
            for (&k, &v) in idx.iter().zip(&z) {
                if v <= 0.0 {
                    alpha = alpha.min(x[k] / (x[k] - v));
                }
            }
            for (&k, &v) in idx.iter().zip(&z) {
                x[k] += alpha * (v - x[k]);
                if x[k] <= 1e-15 {
                    x[k] = 0.0;
                    passive[k] = false;
                }
            }
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_system_is_recovered() {
        let x1: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let x2: Vec<f64> = (0..10).map(|i| ((i * i) % 7) as f64 * 1e6).collect();
        let one = vec![1.0; 10];
        let y: Vec<f64> = (0..10).map(|i| 3.0 + 2.0 * x1[i] + 5e-6 * x2[i]).collect();
        let b = lstsq(&[one, x1, x2], &y).unwrap();
        assert!((b[0] - 3.0).abs() < 1e-9 && (b[1] - 2.0).abs() < 1e-9 && (b[2] - 5e-6).abs() < 1e-15);
    }

    #[test]
    fn rank_deficient_is_none() {
        let x: Vec<f64> = (0..5).map(|i| i as f64).collect();
        let x2: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        assert!(lstsq(&[x, x2], &[1.0, 2.0, 3.0, 4.0, 5.0]).is_none());
    }

    #[test]
    fn nnls_clamps_negative_coefficients() {
        // y = 2·a − 1·b: the unconstrained fit has a negative coefficient.
        let a: Vec<f64> = (1..=8).map(|i| i as f64).collect();
        let b: Vec<f64> = (1..=8).map(|i| (i * i) as f64 / 4.0).collect();
        let y: Vec<f64> = a.iter().zip(&b).map(|(a, b)| 2.0 * a - b).collect();
        let x = nnls(&[a.clone(), b.clone()], &y);
        assert!(x.iter().all(|&v| v >= 0.0));
        assert_eq!(x[1], 0.0);
        // With only `a`, the NNLS answer is the 1-D least squares slope (if positive).
        let slope = a.iter().zip(&y).map(|(a, y)| a * y).sum::<f64>() / a.iter().map(|a| a * a).sum::<f64>();
        assert!((x[0] - slope.max(0.0)).abs() < 1e-9);
    }

    #[test]
    fn nnls_equals_lstsq_when_unconstrained_is_positive() {
        let a: Vec<f64> = (1..=8).map(|i| i as f64).collect();
        let b: Vec<f64> = (1..=8).map(|i| ((i * 3) % 5) as f64).collect();
        let y: Vec<f64> = a.iter().zip(&b).map(|(a, b)| 0.5 * a + 1.5 * b + 0.01).collect();
        let x = nnls(&[a.clone(), b.clone()], &y);
        let l = lstsq(&[a, b], &y).unwrap();
        assert!((x[0] - l[0]).abs() < 1e-9 && (x[1] - l[1]).abs() < 1e-9);
    }
}
