//! Numbers as the report prints them: thousands separated, units said, precision chosen for the
//! reader (a slot-hour figure to the hour, a share to a tenth of a percent). Markdown, HTML,
//! charts and the stdout summary all print through here, so they agree to the digit. The rounding
//! of serialised figures is [`crate::interval::round`], shared with the model.

use crate::interval::round;

/// `1234567.8` → `1,234,568` (no decimals).
pub fn int(x: f64) -> String {
    group(&format!("{:.0}", round(x, 0)))
}

/// With `d` decimals and thousands separators.
pub fn num(x: f64, d: usize) -> String {
    group(&format!("{:.*}", d, round(x, d as i32)))
}

fn group(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (whole, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(w, f)| (w, Some(f)));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// Slot-hours: whole hours from 100 up, one decimal below.
pub fn hours(h: f64) -> String {
    if h.abs() >= 100.0 {
        format!("{} h", int(h))
    } else {
        format!("{} h", num(h, 1))
    }
}

/// Money: whole units from 100 up, two decimals below.
pub fn money(x: f64, currency: &str) -> String {
    if x.abs() >= 100.0 {
        format!("{} {currency}", int(x))
    } else {
        format!("{} {currency}", num(x, 2))
    }
}

/// A share given in percent.
pub fn pct(p: f64) -> String {
    format!("{} %", num(p, 1))
}

/// A duration in seconds, in the unit a person reads it in.
pub fn secs(s: f64) -> String {
    let a = s.abs();
    // One decimal, dropped when it is zero: "15 min", "5.1 h".
    let short = |x: f64| {
        let t = num(x, 1);
        t.strip_suffix(".0").map_or(t.clone(), str::to_string)
    };
    if a < 90.0 {
        format!("{} s", num(s, 0))
    } else if a < 90.0 * 60.0 {
        format!("{} min", short(s / 60.0))
    } else if a < 48.0 * 3600.0 {
        format!("{} h", short(s / 3600.0))
    } else {
        format!("{} d", short(s / 86_400.0))
    }
}

/// A signed change: `+12.5 %`, `−3 h`.
pub fn signed(x: f64, text: &str) -> String {
    if x > 0.0 {
        format!("+{text}")
    } else if x < 0.0 {
        format!("−{}", text.trim_start_matches('-'))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(1234567.8), "1,234,568");
        assert_eq!(num(-1234.567, 2), "-1,234.57");
        assert_eq!(hours(12.34), "12.3 h");
        assert_eq!(hours(17472.0), "17,472 h");
        assert_eq!(money(7650.0, "EUR"), "7,650 EUR");
        assert_eq!(secs(18474.0), "5.1 h");
        assert_eq!(secs(42.0), "42 s");
        assert_eq!(secs(900.0), "15 min");
        assert_eq!(signed(-3.0, "-3 h"), "−3 h");
    }
}
