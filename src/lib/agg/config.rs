//! What an aggregation run is asked to do.

use super::state::Limits;
use crate::error::{Error, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};

/// A statistic written for gauges (`--gauge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GaugeStat {
    /// The value with the newest `ts`, under the series' own name.
    Last,
    Min,
    Max,
    Mean,
    /// Number of points, as a delta counter `NAME.count`.
    Count,
    Sum,
    /// Every statistic above.
    All,
}

impl GaugeStat {
    pub const EACH: [GaugeStat; 6] = [
        GaugeStat::Last,
        GaugeStat::Min,
        GaugeStat::Max,
        GaugeStat::Mean,
        GaugeStat::Count,
        GaugeStat::Sum,
    ];

    /// Expands `all` and removes repeats, keeping the order given.
    pub fn expand(list: &[GaugeStat]) -> Vec<GaugeStat> {
        let mut out: Vec<GaugeStat> = Vec::new();
        for &s in list {
            let items: &[GaugeStat] = if s == GaugeStat::All {
                &GaugeStat::EACH
            } else {
                std::slice::from_ref(&s)
            };
            for &i in items {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    pub fn suffix(self) -> &'static str {
        match self {
            GaugeStat::Min => "min",
            GaugeStat::Max => "max",
            GaugeStat::Mean => "mean",
            GaugeStat::Count => "count",
            GaugeStat::Sum => "sum",
            GaugeStat::Last | GaugeStat::All => "",
        }
    }
}

/// Which timestamp places a point in a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// The point's own `ts`.
    Event,
    /// The time the point was read (for sources with bad clocks).
    Wall,
}

/// What happens to a point whose window was already written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Late {
    /// Count and log it, then drop it.
    Drop,
    /// Write its window's aggregate of late points as a correction line (`"correction":true`).
    Emit,
}

/// What the lines of a window look like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Style {
    /// tlm metrics: sums, gauge statistics, summaries, set sizes (docs/aggregation.md).
    #[default]
    Tlm,
    /// Etsy statsd's stat set as gauges, under the names its Graphite backend writes.
    Statsd,
}

/// Which tags identify a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Grouping {
    /// Name and all tags: one group per series.
    #[default]
    Series,
    /// Name and only these tags; other series merge (OpenTSDB's aggregateTags).
    By(Vec<String>),
    /// Name and all tags but these.
    Without(Vec<String>),
}

impl Grouping {
    pub fn keeps(&self, tag: &str) -> bool {
        self.keeps_bytes(tag.as_bytes())
    }

    /// `keeps` of a tag key's bytes.
    pub fn keeps_bytes(&self, tag: &[u8]) -> bool {
        let named = |tags: &[String]| tags.iter().any(|t| t.as_bytes() == tag);
        match self {
            Grouping::Series => true,
            Grouping::By(tags) => named(tags),
            Grouping::Without(tags) => !named(tags),
        }
    }

    pub fn is_series(&self) -> bool {
        *self == Grouping::Series
    }
}

/// Series selection by name (`--match`, `--exclude`).
#[derive(Clone, Debug, Default)]
pub struct NameFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn glob_set(patterns: &[String], flag: &str) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| Error::usage(format!("{flag} `{p}`: {e}")))?);
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::usage(format!("{flag}: {e}")))
}

impl NameFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<NameFilter> {
        Ok(NameFilter {
            include: glob_set(include, "--match")?,
            exclude: glob_set(exclude, "--exclude")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// Whether every name is selected (no `--match` or `--exclude`).
    pub fn selects_all(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    pub fn selects(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(name))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(name))
    }
}

/// What happens to a series in a window where it got no points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Idle {
    /// Nothing is written for it.
    #[default]
    Skip,
    /// It is written as idle (statsd's flush): delta counters 0, gauges their last value,
    /// distributions count 0, sets 0; until it has been idle for `expire` ns, when it is
    /// forgotten.
    Report { expire: Option<i64> },
}

#[derive(Clone, Debug)]
pub struct AggConfig {
    /// Window length in ns.
    pub window: i64,
    /// Sliding windows: a new window starts every `every` ns (`None`: tumbling).
    pub every: Option<i64>,
    /// How long after a window's end points for it are still accepted, in ns.
    pub lateness: i64,
    pub late: Late,
    pub clock: Clock,
    pub grouping: Grouping,
    pub names: NameFilter,
    pub gauge: Vec<GaugeStat>,
    pub quantiles: Vec<f64>,
    /// Write `NAME.rate` for delta counters too (cumulative counters always get one).
    pub rate: bool,
    /// Write counters as running totals (what Prometheus needs).
    pub cumulative: bool,
    /// Highest plausible rate per second when telling a counter wrap from a reset.
    pub max_rate: Option<f64>,
    pub max_series: usize,
    /// Where exact distributions and sets give way to sketches.
    pub limits: Limits,
    pub style: Style,
    /// Thresholds and namespace for `Style::Statsd`.
    pub statsd: super::etsy::Options,
    pub idle: Idle,
    /// Rate cumulative counters over the whole window rather than the span between their
    /// readings (a statsd flush, whose `C` readings arrive whenever clients send them).
    pub rate_per_window: bool,
}

impl Default for AggConfig {
    fn default() -> Self {
        AggConfig {
            window: 10 * crate::time::NS_PER_SEC,
            every: None,
            lateness: 0,
            late: Late::Drop,
            clock: Clock::Event,
            grouping: Grouping::Series,
            names: NameFilter::default(),
            gauge: vec![GaugeStat::Last],
            quantiles: vec![0.5, 0.9, 0.99],
            rate: false,
            cumulative: false,
            max_rate: None,
            max_series: usize::MAX,
            limits: Limits::default(),
            style: Style::Tlm,
            statsd: super::etsy::Options::default(),
            idle: Idle::Skip,
            rate_per_window: false,
        }
    }
}

impl AggConfig {
    /// The distance between window starts.
    pub fn step(&self) -> i64 {
        self.every.unwrap_or(self.window)
    }

    pub fn check(&self) -> Result<()> {
        if let Some(every) = self.every {
            if every >= self.window || self.window % every != 0 {
                return Err(Error::usage(
                    "--every must be shorter than --window and divide it evenly",
                ));
            }
        }
        if let Some(q) = self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return Err(Error::usage(format!("--quantiles: {q} is not in [0, 1]")));
        }
        if !(self.limits.alpha > 0.0 && self.limits.alpha < 1.0) {
            return Err(Error::usage("--sketch-error must be in (0, 1)"));
        }
        if let Some(b) = &self.limits.buckets {
            if b.is_empty()
                || b.iter().any(|x| !x.is_finite())
                || b.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(Error::usage(
                    "--buckets must be finite upper bounds in strictly increasing order",
                ));
            }
            if self.style == Style::Statsd {
                return Err(Error::usage("--buckets does not apply to --style statsd"));
            }
        }
        if self.max_rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return Err(Error::usage("--max-rate must be greater than zero"));
        }
        // Etsy's counters are per-interval amounts; a running total has no statsd name.
        if self.style == Style::Statsd && self.cumulative {
            return Err(Error::usage(
                "--cumulative does not apply to --style statsd",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keeps_the_right_tags() {
        assert!(Grouping::Series.keeps("host"));
        let by = Grouping::By(vec!["dc".into()]);
        assert!(by.keeps("dc") && !by.keeps("host"));
        let without = Grouping::Without(vec!["host".into()]);
        assert!(!without.keeps("host") && without.keeps("dc"));
    }

    #[test]
    fn name_filter_includes_then_excludes() {
        let f = NameFilter::new(&["cpu.*".into(), "mem.*".into()], &["*.idle".into()]).unwrap();
        assert!(f.selects("cpu.user"));
        assert!(!f.selects("cpu.idle"));
        assert!(!f.selects("disk.used"));
        assert!(NameFilter::default().selects("anything"));
        assert!(NameFilter::new(&["[".into()], &[]).is_err());
    }

    #[test]
    fn every_must_divide_the_window() {
        let mut c = AggConfig {
            every: Some(3 * crate::time::NS_PER_SEC),
            ..AggConfig::default()
        };
        assert!(c.check().is_err());
        c.every = Some(5 * crate::time::NS_PER_SEC);
        assert!(c.check().is_ok());
    }
}
