//! Statsd-style flattening of a metric into scalar points, shared by the formats that carry
//! one number per series (Graphite plaintext and pickle, CSV, OpenTSDB): a counter or gauge
//! is one point, a summary one per statistic (`.count`, `.sum`, `.p99_9`) and a histogram
//! one per cumulative bucket (`.le_0_5`, `.le_inf`).

use super::decimal::write_suffix;
use super::{histogram_total, mean, Unsupported};
use crate::metric::{Kind, Metric, Value};

/// Builds the name suffix of each point; kept between metrics so flattening does not
/// allocate after a warm-up.
#[derive(Debug, Default)]
pub(crate) struct Flattener {
    suffix: Vec<u8>,
}

impl Flattener {
    /// Calls `point(suffix, value)` for each point of `m`; the suffix is empty for a counter
    /// or gauge. Scalars that are NaN or infinite are `Unsupported`; in summaries and
    /// histograms a non-finite statistic only drops its own point. On `Err` some points may
    /// already have been visited, so callers write under `all_or_nothing`.
    pub(crate) fn points(
        &mut self,
        m: &Metric,
        mut point: impl FnMut(&[u8], Value),
    ) -> Result<(), Unsupported> {
        check(m)?;
        match m.kind {
            Kind::Counter | Kind::Gauge => {
                let v = m.value.ok_or(Unsupported::MISSING_VALUE)?;
                if matches!(v, Value::F64(f) if !f.is_finite()) {
                    return Err(Unsupported::NON_FINITE);
                }
                point(b"", v);
                Ok(())
            }
            Kind::Summary => self.summary(m, &mut point),
            Kind::Histogram => self.histogram(m, &mut point),
            Kind::Set | Kind::Distribution => Err(Unsupported::RAW_SET_OR_DISTRIBUTION),
        }
    }

    fn summary(
        &mut self,
        m: &Metric,
        point: &mut impl FnMut(&[u8], Value),
    ) -> Result<(), Unsupported> {
        let mut wrote = false;
        if let Some(c) = m.count {
            point(b".count", Value::U64(c));
            wrote = true;
        }
        for (name, v) in [
            (&b".sum"[..], m.sum),
            (b".min", m.min),
            (b".max", m.max),
            (b".mean", mean(m)),
        ] {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                point(name, Value::F64(v));
                wrote = true;
            }
        }
        for &(q, v) in &m.quantiles {
            if !q.is_finite() || !v.is_finite() {
                continue;
            }
            self.suffix.clear();
            self.suffix.extend_from_slice(b".p");
            write_suffix(&mut self.suffix, q, 2);
            point(&self.suffix, Value::F64(v));
            wrote = true;
        }
        if wrote {
            Ok(())
        } else {
            Err(Unsupported::NOTHING_TO_WRITE)
        }
    }

    fn histogram(
        &mut self,
        m: &Metric,
        point: &mut impl FnMut(&[u8], Value),
    ) -> Result<(), Unsupported> {
        let total = histogram_total(m)?;
        point(b".count", Value::U64(total));
        if let Some(s) = m.sum.filter(|s| s.is_finite()) {
            point(b".sum", Value::F64(s));
        }
        let mut cumulative = 0u64;
        for (&b, &c) in m.bounds.iter().zip(&m.counts) {
            cumulative = cumulative.saturating_add(c);
            // An explicit +Inf bound would repeat the `le_inf` point written below.
            if b == f64::INFINITY {
                continue;
            }
            self.suffix.clear();
            self.suffix.extend_from_slice(b".le_");
            write_suffix(&mut self.suffix, b, 0);
            point(&self.suffix, Value::U64(cumulative));
        }
        point(b".le_inf", Value::U64(total));
        Ok(())
    }
}

/// What every flattening format rejects before looking at values.
fn check(m: &Metric) -> Result<(), Unsupported> {
    if matches!(m.kind, Kind::Set | Kind::Distribution) {
        return Err(Unsupported::RAW_SET_OR_DISTRIBUTION);
    }
    if m.name.is_empty() {
        return Err(Unsupported::EMPTY_NAME);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Temporality;

    fn flat(m: &Metric) -> Result<Vec<(String, Value)>, Unsupported> {
        let mut got = Vec::new();
        Flattener::default().points(m, |s, v| {
            got.push((String::from_utf8_lossy(s).into_owned(), v));
        })?;
        Ok(got)
    }

    #[test]
    fn scalars_are_one_point_without_suffix() {
        let m = Metric::counter("c", Temporality::Delta, Value::U64(u64::MAX), 0);
        assert_eq!(
            flat(&m).unwrap(),
            vec![(String::new(), Value::U64(u64::MAX))]
        );
        let m = Metric::gauge("g", Value::F64(f64::NAN), 0);
        assert_eq!(flat(&m), Err(Unsupported::NON_FINITE));
    }

    #[test]
    fn histogram_points_are_cumulative() {
        let m = Metric {
            name: "h".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Delta),
            bounds: vec![0.5, f64::INFINITY],
            counts: vec![1, 2, 3],
            sum: Some(f64::NAN),
            ..Metric::default()
        };
        let names: Vec<_> = flat(&m).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(names, [".count", ".le_0_5", ".le_inf"]);
    }
}
