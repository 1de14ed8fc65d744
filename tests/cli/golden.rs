//! Golden cases: a command, its stdin, its expected stdout, stderr and status
//! (`tests/cli/cases/*.toml`; regenerate expectations with TRYCMD=overwrite).

#[test]
fn golden_cases() {
    let t = trycmd::TestCases::new();
    for name in ["tlm-agg", "tlm-collect", "tlm-publish"] {
        t.register_bin(name, super::harness::bin(name));
    }
    t.case("tests/cli/cases/*.toml");
}
