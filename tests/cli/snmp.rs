//! tlm-snmpwalk against real agents: net-snmp's snmpd (v1, v2c, v3 authPriv) compared with
//! net-snmp's own snmpbulkwalk, and fastsim's simulated switches (moving, wrapping Counter32s)
//! for scale, unreachable agents and counter wraps. Agents that misbehave in ways no real
//! agent here can (tooBig on demand, OIDs that go backwards) are built in the test from the
//! library's own codec.

use super::harness::{bin, text};
use super::sinks::stop_at_exit;
use super::statsd::TempDir;
use serde_json::Value;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tlm::snmp::ber;
use tlm::snmp::pdu::{self, Message, PduType};

const AUTH: &str = "tlm-auth-pass-123";
const PRIV: &str = "tlm-priv-pass-123";

fn lab() -> PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    repo.ancestors()
        .skip(1)
        .map(|d| d.join("shared/snmp-lab"))
        .find(|d| d.join("snmpd-lab.conf").is_file())
        .expect("../shared/snmp-lab beside the repository")
}

fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// One snmpd for the whole test binary, on a free loopback port; its address.
fn snmpd() -> &'static str {
    static AGENT: OnceLock<String> = OnceLock::new();
    AGENT.get_or_init(|| {
        let dir = TempDir::new(&format!("snmpd-{}", std::process::id()));
        let persist = dir.0.join("persist");
        std::fs::create_dir_all(&persist).expect("persist dir");
        let port = free_udp_port();
        // Reaped by PID at exit (stop_at_exit), like the sinks.
        #[allow(clippy::zombie_processes)]
        let child = Command::new("snmpd")
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(lab().join("snmpd-lab.conf"))
            .arg("-p")
            .arg(dir.0.join("snmpd.pid"))
            .args(["-I", "-smux", &format!("udp:127.0.0.1:{port}")])
            .env("SNMP_PERSISTENT_DIR", &persist)
            .env("MIBDIRS", lab().join("../mibs"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("snmpd (apt-get install snmpd snmp)");
        let base = dir.0.clone();
        std::mem::forget(dir);
        stop_at_exit(vec![child.id()], base);
        let addr = format!("127.0.0.1:{port}");
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            let ok = Command::new("snmpget")
                .args([
                    "-v2c",
                    "-c",
                    "public",
                    "-t",
                    "0.3",
                    "-r",
                    "0",
                    &addr,
                    "1.3.6.1.2.1.1.5.0",
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return addr;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("snmpd did not answer on {addr}");
    })
}

/// fastsim serving `count` switches on consecutive addresses from `base`; stopped at exit.
fn fastsim(base: &str, count: u32) -> u16 {
    let port = free_udp_port();
    let lab = lab();
    // Reaped by PID at exit (stop_at_exit), like the sinks.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("python3")
        .arg(lab.join("fastsim.py"))
        .arg("--snmprec")
        .arg(lab.join("snmprec/switch48-live.snmprec"))
        .args([
            "--base",
            base,
            "--count",
            &count.to_string(),
            "--port",
            &port.to_string(),
        ])
        .args(["--duration", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 fastsim.py");
    stop_at_exit(vec![child.id()], std::env::temp_dir().join("tlm-none"));
    let addr = format!("{base}:{port}");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let (ok, _) = walk(&[
            "-t",
            "0.3",
            "-r",
            "0",
            "--op",
            "get",
            &addr,
            "1.3.6.1.2.1.1.5.0",
        ]);
        if ok {
            return port;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("fastsim did not answer on {addr}");
}

/// Runs tlm-snmpwalk; (success, stdout, stderr) with stdout.
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("tlm-snmpwalk"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("tlm-snmpwalk");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn walk(args: &[&str]) -> (bool, String) {
    let (ok, out, _) = run(args);
    (ok, out)
}

fn metrics(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn net_snmp(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .expect("net-snmp tools");
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Lines without the ones that move between two walks (uptimes, SNMP's own packet counters).
fn stable(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| {
            !l.contains("Timeticks") && !l.contains(".1.3.6.1.2.1.11.") && !l.contains("::snmp")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn text_output_equals_snmpbulkwalk_for_v1_v2c_and_v3() {
    let agent = snmpd();
    let subtree = "1.3.6.1.2.1.1";
    let theirs = net_snmp(
        "snmpbulkwalk",
        &["-v2c", "-c", "public", "-On", agent, subtree],
    );
    let (ok, ours) = walk(&[
        "-v2c", "-c", "public", "--format", "text", "-On", agent, subtree,
    ]);
    assert!(ok);
    assert!(stable(&theirs).len() > 20);
    assert_eq!(stable(&ours), stable(&theirs), "v2c -On");

    let theirs_v1 = net_snmp("snmpwalk", &["-v1", "-c", "public", "-On", agent, subtree]);
    let (ok, ours_v1) = walk(&[
        "-v1", "-c", "public", "--format", "text", "-On", agent, subtree,
    ]);
    assert!(ok);
    assert_eq!(stable(&ours_v1), stable(&theirs_v1), "v1 -On");

    for (user, auth) in [("tlmv3", "SHA"), ("tlmv3s256", "SHA-256")] {
        let v3 = [
            "-v3", "-l", "authPriv", "-u", user, "-a", auth, "-A", AUTH, "-x", "AES", "-X", PRIV,
        ];
        let mut theirs_args = v3.to_vec();
        theirs_args.extend(["-On", agent, subtree]);
        let theirs = net_snmp("snmpbulkwalk", &theirs_args);
        let mut ours_args = v3.to_vec();
        ours_args.extend(["--format", "text", "-On", agent, subtree]);
        let (ok, ours) = walk(&ours_args);
        assert!(ok, "{user}");
        assert_eq!(stable(&ours), stable(&theirs), "v3 {user}");
    }

    // With the standard MIBs loaded on both sides: names, enums, hints, units.
    let mibs = lab().join("../mibs");
    let mibs = mibs.to_str().expect("utf-8 path");
    let theirs = net_snmp(
        "snmpbulkwalk",
        &[
            "-v2c",
            "-c",
            "public",
            "-M",
            mibs,
            "-m",
            "ALL",
            agent,
            "1.3.6.1.2.1.2",
        ],
    );
    let (ok, ours) = walk(&[
        "-v2c",
        "-c",
        "public",
        "--format",
        "text",
        "-m",
        "ALL",
        agent,
        "IF-MIB::interfaces",
    ]);
    assert!(ok);
    let moving = |l: &&str| !l.contains("Counter") && !l.contains("Timeticks");
    let theirs: Vec<&str> = theirs.lines().filter(moving).collect();
    let ours: Vec<&str> = ours.lines().filter(moving).collect();
    assert!(theirs.len() > 30);
    assert_eq!(ours, theirs, "names");
}

#[test]
fn wrong_v3_secrets_are_named() {
    let agent = snmpd();
    let base = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        "tlmv3",
        "-a",
        "SHA",
        "-x",
        "AES",
        "-t",
        "0.5",
        "-r",
        "0",
        "--format",
        "text",
        agent,
        "sysName.0",
    ];
    let mut wrong_auth = base.to_vec();
    wrong_auth.extend(["-A", "not-the-pass-1", "-X", PRIV]);
    let (ok, _, err) = run(&wrong_auth);
    assert!(!ok);
    assert!(
        err.contains("usmStatsWrongDigests") || err.contains("authentication"),
        "{err}"
    );
    let mut unknown = base.to_vec();
    unknown[4] = "nobody";
    unknown.extend(["-A", AUTH, "-X", PRIV]);
    let (ok, _, err) = run(&unknown);
    assert!(!ok);
    assert!(err.contains("usmStatsUnknownUserNames"), "{err}");
    // Secrets from files, nothing on the command line.
    let dir = TempDir::new("snmp-secrets");
    let (a, p) = (dir.0.join("auth"), dir.0.join("priv"));
    std::fs::write(&a, format!("{AUTH}\n")).expect("auth file");
    std::fs::write(&p, PRIV).expect("priv file");
    let mut from_files = base.to_vec();
    let (a, p) = (a.display().to_string(), p.display().to_string());
    from_files.extend(["--auth-pass-file", &a, "--priv-pass-file", &p]);
    let (ok, out, err) = run(&from_files);
    assert!(ok, "{err}");
    assert_eq!(out, "SNMPv2-MIB::sysName.0 = STRING: lab-snmpd\n");
}

/// Counters come out as exact integers equal to net-snmp's, with the row's index and labels.
#[test]
fn metrics_carry_exact_counters_index_and_labels() {
    let agent = snmpd();
    let (ok, out) = walk(&[
        "-v2c",
        "-c",
        "public",
        agent,
        "IF-MIB::ifXTable",
        "--label",
        "ifName,ifDescr",
    ]);
    assert!(ok);
    let ms = metrics(&out);
    let theirs = net_snmp(
        "snmpbulkwalk",
        &[
            "-v2c",
            "-c",
            "public",
            "-On",
            "-Oqv",
            agent,
            "1.3.6.1.2.1.31.1.1.1.15",
        ],
    );
    let speeds: Vec<u64> = theirs
        .lines()
        .map(|l| l.trim().parse().expect("a number"))
        .collect();
    let ours: Vec<u64> = ms
        .iter()
        .filter(|m| m["name"] == "ifHighSpeed")
        .map(|m| m["value"].as_u64().expect("integer"))
        .collect();
    assert_eq!(ours, speeds);
    let lo = ms
        .iter()
        .find(|m| m["name"] == "ifHCInOctets" && m["tags"]["ifName"] == "lo")
        .expect("lo's ifHCInOctets");
    assert_eq!(lo["kind"], "counter");
    assert_eq!(lo["temporality"], "cumulative");
    assert_eq!(lo["tags"]["ifIndex"], "1");
    assert_eq!(
        lo["tags"]["ifDescr"], "lo",
        "joined across ifTable and ifXTable"
    );
    assert!(lo["start_ts"].as_i64().expect("start_ts") < lo["ts"].as_i64().expect("ts"));
    for name in ["snmp.up", "sysUpTime"] {
        assert!(ms.iter().any(|m| m["name"] == name), "{name}");
    }
    assert!(
        !ms.iter().any(|m| m["name"] == "ifName_info"),
        "label columns are tags"
    );
}

/// The issue's pipeline: ifXTable with names, rated, as InfluxDB lines.
#[test]
fn snmpwalk_agg_publish_pipeline() {
    let agent = snmpd();
    let script = format!(
        "{w} -v2c -c public {agent} IF-MIB::ifXTable --label ifName --interval 1s --count 2 \
         | {a} --window 1s --rate | {p} --format influx",
        w = bin("tlm-snmpwalk").display(),
        a = bin("tlm-agg").display(),
        p = bin("tlm-publish").display()
    );
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &script])
        .output()
        .expect("bash");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("ifHCInOctets")
            && l.contains("ifName=lo")
            && l.contains("rate=")),
        "{stdout}"
    );
}

/// Many simulated switches, one address with no agent: every switch is walked in full, the
/// dead one is reported down after its retries, and nobody waits for it.
#[test]
fn unreachable_agents_among_reachable_ones() {
    let port = fastsim("127.61.0.1", 20);
    let dir = TempDir::new("snmp-targets");
    let targets = dir.0.join("targets.txt");
    let mut list: Vec<String> = (1..=20).map(|i| format!("127.61.0.{i}:{port}")).collect();
    list.push(format!("127.61.1.1:{port}"));
    list.push(format!("{{\"host\":\"127.61.0.1\",\"port\":{port},\"name\":\"sw-json\",\"tags\":{{\"site\":\"lab\"}}}}"));
    std::fs::write(&targets, list.join("\n")).expect("targets");
    let t0 = Instant::now();
    let (ok, out, err) = run(&[
        "-v2c",
        "-c",
        "public",
        "-t",
        "0.5",
        "-r",
        "1",
        "--concurrency",
        "8",
        "--targets",
        &targets.display().to_string(),
        "IF-MIB::ifTable",
        "--label",
        "ifName",
    ]);
    assert!(ok, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{err}");
    let ms = metrics(&out);
    let up = |agent: &str| {
        ms.iter()
            .find(|m| m["name"] == "snmp.up" && m["tags"]["agent"] == agent)
            .and_then(|m| m["value"].as_u64())
    };
    for i in 1..=20 {
        assert_eq!(up(&format!("127.61.0.{i}:{port}")), Some(1));
    }
    assert_eq!(up(&format!("127.61.1.1:{port}")), Some(0));
    assert_eq!(up("sw-json"), Some(1));
    let octets = ms
        .iter()
        .filter(|m| m["name"] == "ifInOctets" && m["tags"]["agent"] == "sw-json")
        .inspect(|m| assert_eq!(m["tags"]["site"], "lab"))
        .count();
    assert_eq!(octets, 54, "54 interfaces of the simulated switch");
    assert!(
        err.contains("event=poll_failed") && err.contains("timeout"),
        "{err}"
    );
}

/// Counter32s that wrap between two polls give a steady rate through tlm-agg, not a spike or
/// a reset: the series nearest its wrap is watched across it.
#[test]
fn counter32_wraps_give_a_continuous_rate() {
    let port = fastsim("127.62.0.1", 10);
    let rates = snmprec_rates();
    let agents: Vec<String> = (1..=10).map(|i| format!("127.62.0.{i}:{port}")).collect();
    let all = agents.join(",");
    let (ok, out) = walk(&["-v2c", "-c", "public", &all, "IF-MIB::ifInOctets"]);
    assert!(ok);
    // Seconds until each series wraps, from its value now and its rate.
    let (agent, index, rate, wait) = metrics(&out)
        .iter()
        .filter(|m| m["name"] == "ifInOctets")
        .filter_map(|m| {
            let index = m["tags"]["ifIndex"].as_str()?.to_owned();
            let rate = *rates.get(&index)?;
            let v = m["value"].as_u64()? as f64;
            let agent = m["tags"]["agent"].as_str()?.to_owned();
            Some((agent, index, rate, (4_294_967_296.0 - v) / rate))
        })
        // Far enough off that the next command's first poll comes before the wrap.
        .filter(|s| s.3 > 3.0)
        .min_by(|a, b| a.3.total_cmp(&b.3))
        .expect("ifInOctets series");
    assert!(wait < 20.0, "no series wraps within 20 s ({wait:.1} s)");
    let polls = (wait.ceil() as u64 + 3).to_string();
    let instance = format!("IF-MIB::ifInOctets.{index}");
    let (ok, raw) = walk(&[
        "-v2c",
        "-c",
        "public",
        &agent,
        &instance,
        "--interval",
        "1s",
        "--count",
        &polls,
    ]);
    assert!(ok);
    let values: Vec<u64> = metrics(&raw)
        .iter()
        .filter(|m| m["name"] == "ifInOctets")
        .filter_map(|m| m["value"].as_u64())
        .collect();
    assert!(
        values.windows(2).any(|w| w[1] < w[0]),
        "a wrap between polls: {values:?}"
    );
    let mut agg = Command::new(bin("tlm-agg"))
        .args(["--window", "1s", "--rate", "--match", "ifInOctets"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tlm-agg");
    std::io::Write::write_all(&mut agg.stdin.take().expect("stdin"), raw.as_bytes()).expect("feed");
    let out = agg.wait_with_output().expect("tlm-agg");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen: Vec<f64> = metrics(&text(&out.stdout))
        .iter()
        .filter(|m| m["name"] == "ifInOctets.rate")
        .filter_map(|m| m["value"].as_f64())
        .collect();
    // One rate per poll after the first, the wrap among them.
    assert!(seen.len() as f64 > wait, "{seen:?}");
    for r in &seen {
        assert!(
            (r / rate - 1.0).abs() < 0.15,
            "rate {r} vs {rate}: {seen:?}"
        );
    }
}

/// ifInOctets rates by ifIndex from the simulator's snmprec.
fn snmprec_rates() -> std::collections::HashMap<String, f64> {
    let text =
        std::fs::read_to_string(lab().join("snmprec/switch48-live.snmprec")).expect("snmprec");
    text.lines()
        .filter_map(|l| {
            let (oid, rest) = l.split_once('|')?;
            let index = oid.strip_prefix("1.3.6.1.2.1.2.2.1.10.")?;
            let rate = rest
                .split("rate=")
                .nth(1)?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((index.to_owned(), rate))
        })
        .collect()
}

/// A broken agent: answers GETBULK with tooBig above `max_ok` repetitions, and, when
/// `backwards`, with an OID before the one asked for. Returns its port.
fn broken_agent(max_ok: i32, backwards: bool) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut served = 0u32;
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Ok(Message::Community { pdu, .. }) = pdu::decode(&buf[..n]) else {
                continue;
            };
            let asked = pdu
                .varbinds()
                .next()
                .and_then(|v| v.ok())
                .map(|v| v.oid.to_oid());
            let Some(asked) = asked else { continue };
            let too_big = pdu.kind == PduType::GetBulk && pdu.error_index > max_ok;
            let mut reply = Vec::new();
            let msg = ber::begin(&mut reply, ber::TAG_SEQUENCE);
            ber::write_i64(&mut reply, ber::TAG_INTEGER, 1);
            ber::write_tlv(&mut reply, ber::TAG_OCTET_STRING, b"public");
            let p = ber::begin(&mut reply, PduType::Response.tag());
            ber::write_i64(&mut reply, ber::TAG_INTEGER, pdu.request_id.into());
            ber::write_i64(&mut reply, ber::TAG_INTEGER, if too_big { 1 } else { 0 });
            ber::write_i64(&mut reply, ber::TAG_INTEGER, 0);
            let list = ber::begin(&mut reply, ber::TAG_SEQUENCE);
            if !too_big {
                served += 1;
                let mut next = asked.arcs().to_vec();
                if backwards && served > 2 {
                    next.truncate(next.len().saturating_sub(1));
                } else if next.len() < 10 {
                    next.extend([1, 1]);
                } else if let Some(last) = next.last_mut() {
                    *last += 1;
                }
                let vb = ber::begin(&mut reply, ber::TAG_SEQUENCE);
                ber::write_oid(&mut reply, &next);
                ber::write_i64(&mut reply, 0x41, 7);
                ber::end(&mut reply, vb);
            }
            ber::end(&mut reply, list);
            ber::end(&mut reply, p);
            ber::end(&mut reply, msg);
            let _ = sock.send_to(&reply, from);
        }
    });
    port
}

#[test]
fn too_big_halves_and_backwards_oids_stop_the_walk() {
    let port = broken_agent(3, false);
    let addr = format!("127.0.0.1:{port}");
    let (ok, out, err) = run(&[
        "-v2c",
        "-c",
        "public",
        "--format",
        "text",
        "-On",
        "-Cr25",
        "--max-varbinds",
        "20",
        &addr,
        "1.3.6.1.4.1.99999",
    ]);
    assert!(
        !ok,
        "the agent never ends its walk: stopped at --max-varbinds"
    );
    assert_eq!(out.lines().count(), 20, "{out}");
    assert!(err.contains("more than 20 varbinds"), "{err}");

    let port = broken_agent(25, true);
    let addr = format!("127.0.0.1:{port}");
    let (ok, out, err) = run(&[
        "-v2c",
        "-c",
        "public",
        "--format",
        "text",
        "-On",
        &addr,
        "1.3.6.1.4.1.99999",
    ]);
    assert!(!ok);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains("not increasing"), "{err}");
}
