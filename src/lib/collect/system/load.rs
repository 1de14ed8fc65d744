//! `loadavg`: load averages and the number of processes.

use super::{parse_f64, parse_u64, Stamp};
use crate::metric::{Metric, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    /// M of the `N/M` field: all processes (scheduling entities) that exist.
    pub processes: u64,
}

pub fn parse(text: &str) -> Result<LoadAvg, String> {
    let mut fields = text.split_ascii_whitespace();
    let mut next = |what: &str| fields.next().ok_or_else(|| format!("no {what} field"));
    let one = parse_f64(next("1-minute load")?)?;
    let five = parse_f64(next("5-minute load")?)?;
    let fifteen = parse_f64(next("15-minute load")?)?;
    let tasks = next("running/total processes")?;
    let (_, total) = tasks
        .split_once('/')
        .ok_or_else(|| format!("`{tasks}` is not running/total processes"))?;
    Ok(LoadAvg {
        one,
        five,
        fifteen,
        processes: parse_u64(total)?,
    })
}

pub fn emit(l: &LoadAvg, at: Stamp, out: &mut Vec<Metric>) {
    out.push(at.gauge("system.load.1m", Value::F64(l.one)));
    out.push(at.gauge("system.load.5m", Value::F64(l.five)));
    out.push(at.gauge("system.load.15m", Value::F64(l.fifteen)));
    out.push(at.gauge("system.processes.total", Value::U64(l.processes)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_emits() {
        let l = parse("0.95 0.47 0.19 1/85 5854\n").unwrap();
        assert_eq!(
            l,
            LoadAvg {
                one: 0.95,
                five: 0.47,
                fifteen: 0.19,
                processes: 85
            }
        );
        let mut out = Vec::new();
        emit(&l, Stamp { ts: 3, boot_ns: 0 }, &mut out);
        let got: Vec<_> = out.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(
            got,
            [
                ("system.load.1m", Some(Value::F64(0.95))),
                ("system.load.5m", Some(Value::F64(0.47))),
                ("system.load.15m", Some(Value::F64(0.19))),
                ("system.processes.total", Some(Value::U64(85))),
            ]
        );
        assert!(out.iter().all(|m| m.ts == 3 && m.validate().is_ok()));
    }

    #[test]
    fn malformed_loadavg_gives_reasons() {
        assert!(parse("").unwrap_err().contains("1-minute"));
        assert!(parse("0.1 0.2\n").unwrap_err().contains("15-minute"));
        assert!(parse("0.1 abc 0.3 1/2 3\n").unwrap_err().contains("`abc`"));
        assert!(parse("0.1 0.2 0.3 NaN 3\n").unwrap_err().contains("`NaN`"));
        assert!(parse("0.1 0.2 0.3 12 3\n").unwrap_err().contains("`12`"));
        assert!(parse("0.1 0.2 0.3 1/x 3\n").unwrap_err().contains("`x`"));
        assert!(parse("inf 0.2 0.3 1/2 3\n").unwrap_err().contains("`inf`"));
    }
}
