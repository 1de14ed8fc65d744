//! Man pages and completions are generated from the clap definitions; this test fails when
//! the committed files are stale. `TLM_REGENERATE=1` (scripts/gen-docs) rewrites them.

use std::path::Path;

fn check_or_write(path: &Path, fresh: &[u8], stale: &mut Vec<String>) {
    if std::env::var_os("TLM_REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, fresh).unwrap();
        return;
    }
    if std::fs::read(path).ok().as_deref() != Some(fresh) {
        stale.push(path.display().to_string());
    }
}

fn man_page(cmd: clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_owned();
    let man = clap_mangen::Man::new(cmd.clone())
        .date("2026-11-21")
        .manual("tlm manual")
        .source(format!("tlm {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out).unwrap();
    }
    let mut extra = String::new();
    extra.push_str(".SH EXAMPLES\n");
    let help = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    for line in help.lines().skip(1) {
        let line = line.trim_start();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            extra.push_str(&format!(".PP\n{}\n", comment.replace('-', "\\-")));
        } else {
            extra.push_str(&format!(
                ".PP\n.RS 4\n.nf\n\\fB{}\\fR\n.fi\n.RE\n",
                line.replace('\\', "\\e").replace('-', "\\-")
            ));
        }
    }
    extra.push_str(".SH ENVIRONMENT\nOptions given on the command line win over the environment. NO_COLOR turns colour off.\n");
    for (var, flag) in env_vars(&cmd) {
        extra.push_str(&format!(
            ".TP\n.B {var}\n\\fB\\-\\-{}\\fR\n",
            flag.replace('-', "\\-")
        ));
    }
    extra.push_str(".SH EXIT STATUS\n");
    for (code, text) in tlm::Exit::TABLE {
        extra.push_str(&format!(
            ".TP\n.B {}\n{}\n",
            code as i32,
            text.replace('-', "\\-")
        ));
    }
    extra.push_str(&format!(
        ".SH SEE ALSO\n.BR tlm (7){}\n",
        [
            "tlm-agg",
            "tlm-collect",
            "tlm-publish",
            "tlm-snmpwalk",
            "tlm-statsd"
        ]
        .iter()
        .filter(|n| **n != name)
        .map(|n| format!(",\n.BR {n} (1)"))
        .collect::<String>()
    ));
    out.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut out).unwrap();
    out
}

/// (variable, long flag) of every option of `cmd` and its subcommands, sorted.
fn env_vars(cmd: &clap::Command) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|a| {
            Some((
                a.get_env()?.to_string_lossy().into_owned(),
                a.get_long()?.to_owned(),
            ))
        })
        .collect();
    for sub in cmd.get_subcommands() {
        vars.extend(env_vars(sub));
    }
    vars.sort();
    vars.dedup();
    vars
}

#[test]
fn every_option_has_an_environment_variable() {
    for cmd in tlm::cli::commands() {
        let mut cmds = vec![cmd.clone()];
        cmds.extend(cmd.get_subcommands().cloned());
        for c in cmds {
            for a in c.get_arguments() {
                let exempt = a.is_positional()
                    || ["help", "version", "verbose", "quiet"].contains(&a.get_id().as_str());
                assert!(
                    exempt
                        || a.get_env()
                            .is_some_and(|e| e.to_string_lossy().starts_with("TLM_")),
                    "{} --{} has no TLM_* variable",
                    c.get_name(),
                    a.get_id()
                );
            }
        }
    }
}

#[test]
fn man_pages_and_completions_are_fresh() {
    use clap_complete::Shell;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for cmd in tlm::cli::commands() {
        let name = cmd.get_name().to_owned();
        check_or_write(
            &root.join(format!("man/{name}.1")),
            &man_page(cmd.clone()),
            &mut stale,
        );
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), name.clone(), &mut buf);
            check_or_write(&root.join("completions").join(file), &buf, &mut stale);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files (run scripts/gen-docs): {stale:?}"
    );
}

#[test]
fn every_man_page_lists_the_exit_codes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "tlm-agg.1",
        "tlm-collect.1",
        "tlm-publish.1",
        "tlm-snmpwalk.1",
        "tlm-statsd.1",
        "tlm.7",
    ] {
        let page = std::fs::read_to_string(root.join("man").join(name)).unwrap();
        for code in ["64", "65", "66", "69", "70", "74"] {
            assert!(
                page.contains(&format!(".B {code}")) || page.contains(&format!("\\fB{code}\\fR")),
                "{name} lacks exit code {code}"
            );
        }
    }
}
