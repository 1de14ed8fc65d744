//! Which line format a program prints, from its first meaningful line: how `tlm-collect
//! exec` reads plugins without being told (`--input-format auto`).

/// The line formats a plugin may print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Guess from the first non-empty line
    Auto,
    /// tlm metric v1
    Ndjson,
    /// Graphite plaintext: path value [timestamp]
    Graphite,
    /// InfluxDB line protocol
    Influx,
    /// Prometheus text exposition
    Prometheus,
    /// statsd lines: name:value|type
    Statsd,
}

/// The format of `line` (the first non-empty line of the output):
/// - `{` starts tlm NDJSON;
/// - `#` (HELP/TYPE comments) or `name{labels}` is Prometheus text;
/// - `name:value|type` is statsd;
/// - a second field holding `=` is InfluxDB line protocol;
/// - three fields, or a first field with a `.` or `;` (not valid in a Prometheus name), is
///   Graphite; any other `name value` is Prometheus.
pub fn detect(line: &str) -> InputFormat {
    let line = line.trim();
    if line.starts_with('{') {
        return InputFormat::Ndjson;
    }
    if line.starts_with('#') {
        return InputFormat::Prometheus;
    }
    let mut fields = line.split_ascii_whitespace();
    let first = fields.next().unwrap_or("");
    let second = fields.next();
    let third = fields.next();
    if second.is_none() && first.contains(':') && first.contains('|') {
        return InputFormat::Statsd;
    }
    if first.contains('{') {
        return InputFormat::Prometheus;
    }
    if second.is_some_and(|s| s.contains('=')) {
        return InputFormat::Influx;
    }
    if first.contains('.') || first.contains(';') {
        return InputFormat::Graphite;
    }
    match third {
        // Prometheus timestamps are milliseconds (13 digits now), Graphite's seconds (10).
        Some(t) if t.len() >= 13 => InputFormat::Prometheus,
        Some(_) => InputFormat::Graphite,
        None => InputFormat::Prometheus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_recognised() {
        for (line, want) in [
            (
                "{\"name\":\"x\",\"kind\":\"gauge\",\"value\":1}",
                InputFormat::Ndjson,
            ),
            (
                "# HELP node_load1 1m load average.",
                InputFormat::Prometheus,
            ),
            (
                "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1.5",
                InputFormat::Prometheus,
            ),
            ("node_load1 0.5", InputFormat::Prometheus),
            ("node_load1 0.5 1700000000000", InputFormat::Prometheus),
            ("api.requests:1|c", InputFormat::Statsd),
            ("api.latency:320|ms|@0.1|#env:prod", InputFormat::Statsd),
            (
                "cpu,host=a usage=0.5 1700000000000000000",
                InputFormat::Influx,
            ),
            ("cpu usage=0.5", InputFormat::Influx),
            ("servers.web1.load 0.5 1700000000", InputFormat::Graphite),
            ("load;host=a 0.5 1700000000", InputFormat::Graphite),
            ("load 0.5 1700000000", InputFormat::Graphite),
        ] {
            assert_eq!(detect(line), want, "{line}");
        }
    }
}
