//! Small pieces the model and the report share, kept here so that neither reaches into the
//! other for them: [`Interval`], a figure with its uncertainty; [`finite`], what a figure is
//! serialised as (full precision: a reader of the JSON rounds for itself); [`round`], a figure
//! rounded for people to read. How figures are printed for people is the report's
//! (`report::fmt`, which rounds with [`round`]) and, for `simulate`'s tables, `model::table`.

use serde::{Deserialize, Serialize};

/// A figure as it is serialised: at full precision (JSON holds every f64 exactly, and a small
/// farm's per-machine minutes or a few minutes of overhead are lost at a fixed number of
/// decimals), but never NaN or infinite (0 ÷ 0 of an empty window; JSON has no such number, and
/// serde would write `null`, which does not read back as a figure) and never −0.
pub fn finite(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 { 0.0 } else { x }
}

/// Rounds to `d` decimals, for printing: NaN and infinities become 0, and −0 becomes 0.
pub fn round(x: f64, d: i32) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let m = 10f64.powi(d);
    let r = (x * m).round() / m;
    // -0.0 prints as "-0"; nobody means that.
    if r == 0.0 { 0.0 } else { r }
}

/// A figure with its uncertainty: the lowest, middle and highest estimates (over the seeds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub mid: f64,
    pub hi: f64,
}

impl Interval {
    /// A figure known exactly.
    pub fn point(x: f64) -> Interval {
        Interval {
            lo: x,
            mid: x,
            hi: x,
        }
    }

    /// Each end and the middle times `f`.
    pub fn scale(self, f: f64) -> Interval {
        Interval {
            lo: self.lo * f,
            mid: self.mid * f,
            hi: self.hi * f,
        }
    }

    /// Each end and the middle as serialised ([`finite`]).
    pub fn finite(self) -> Interval {
        Interval {
            lo: finite(self.lo),
            mid: finite(self.mid),
            hi: finite(self.hi),
        }
    }

    /// The lowest, the median (the upper one of an even count) and the highest of `v`; all 0
    /// when `v` is empty.
    pub fn of(mut v: Vec<f64>) -> Interval {
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Interval {
                lo: 0.0,
                mid: 0.0,
                hi: 0.0,
            };
        }
        Interval {
            lo: v[0],
            mid: v[v.len() / 2],
            hi: v[v.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_drops_noise_and_negative_zero() {
        assert_eq!(round(-0.0001, 2), 0.0);
        assert_eq!(round(1.23456, 2), 1.23);
        assert_eq!(round(f64::NAN, 2), 0.0);
    }

    #[test]
    fn serialised_figures_keep_every_digit_but_not_nan_or_negative_zero() {
        assert_eq!(finite(210.0 / 3600.0), 210.0 / 3600.0);
        assert_eq!(finite(f64::INFINITY), 0.0);
        assert_eq!(finite(f64::NAN), 0.0);
        assert!(finite(-0.0).is_sign_positive());
    }

    #[test]
    fn intervals_of_values() {
        let i = Interval::of(vec![3.0, 1.0, 2.0, 4.0]);
        assert_eq!((i.lo, i.mid, i.hi), (1.0, 3.0, 4.0));
        assert_eq!(Interval::of(Vec::new()), Interval::default());
        assert_eq!(Interval::point(2.0).scale(1.5), Interval::point(3.0));
        assert_eq!(
            Interval::point(1.0 / 3.0).finite(),
            Interval::point(1.0 / 3.0)
        );
        assert_eq!(Interval::point(f64::NAN).finite(), Interval::point(0.0));
    }
}
