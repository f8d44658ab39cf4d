//! What every benchmark here shares.

use std::time::Instant;

/// Median nanoseconds per call over seven rounds of `iterations` calls,
/// after a warm-up of a tenth of that.
#[allow(dead_code)]
pub fn measure(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    rounds.sort_by(|a, b| a.total_cmp(b));
    rounds[rounds.len() / 2]
}

/// [`measure`], printing the figure under `name`.
#[allow(dead_code)]
pub fn measure_named(name: &str, iterations: u32, f: impl FnMut()) -> f64 {
    let ns = measure(iterations, f);
    println!("{name:<62} {ns:>10.1} ns");
    ns
}
