//! `ipvs-herald generate`: the man pages and shell completions, rendered from the same clap
//! definitions the binary parses its command line with, so that they cannot drift from `--help`.
//!
//! The Debian package build (`packaging/deb.sh`) runs the freshly built binary to write them
//! before `cargo deb` packs them; an install from source runs it by hand.

use anyhow::Context;
use clap_mangen::roff::{bold, italic, roman, Roff};
use std::fs;
use std::path::{Path, PathBuf};

/// The manual section: ipvs-herald is a daemon and lives in /usr/sbin.
const SECTION: &str = "8";
/// The `.TH` manual name of section 8 pages on Debian.
const MANUAL: &str = "System Manager's Manual";

/// Arguments of `ipvs-herald generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Write ipvs-herald.8 and one ipvs-herald-COMMAND.8 page per command into DIR.
    Man {
        /// Output directory (created when missing).
        dir: PathBuf,
    },
    /// Write the completion script for SHELL into DIR (ipvs-herald.bash, _ipvs-herald,
    /// ipvs-herald.fish, ...).
    Completions {
        shell: clap_complete::Shell,
        /// Output directory (created when missing).
        dir: PathBuf,
    },
}

/// `cli` is the command line as `main` defines it (passed in, so that this module does not
/// reach back into the crate root that calls it).
pub fn run(args: &GenerateArgs, cli: clap::Command) -> anyhow::Result<()> {
    match &args.what {
        What::Man { dir } => {
            for path in write_man_pages(dir, cli)? {
                println!("{}", path.display());
            }
        }
        What::Completions { shell, dir } => {
            create_dir(dir)?;
            let mut cmd = cli;
            let name = cmd.get_name().to_string();
            let path =
                clap_complete::generate_to(*shell, &mut cmd, name, dir).with_context(|| {
                    format!("cannot write {shell} completions into {}", dir.display())
                })?;
            println!("{}", path.display());
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// The command as the man pages describe it: built (so subcommands know their full names) and
/// without clap's `help` subcommand, which `--help` already covers.
fn man_command(cli: clap::Command) -> clap::Command {
    let mut cmd = cli.disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The commands an operator sees: every subcommand that is not hidden.
fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// Writes every page into `dir` and returns their paths, the main page first.
fn write_man_pages(dir: &Path, cli: clap::Command) -> anyhow::Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let cmd = man_command(cli);
    let mut pages = vec![(format!("{}.{SECTION}", cmd.get_name()), main_page(&cmd)?)];
    for sub in visible_subcommands(&cmd) {
        pages.push((
            format!("{}-{}.{SECTION}", cmd.get_name(), sub.get_name()),
            command_page(&cmd, sub)?,
        ));
    }
    let mut written = Vec::new();
    for (name, text) in pages {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn new_man(cmd: clap::Command) -> clap_mangen::Man {
    let source = format!("ipvs-herald {}", env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(cmd)
        .section(SECTION)
        .source(source)
        .manual(MANUAL)
}

/// ipvs-herald(8): synopsis, description, global options, every command with its usage and
/// description, then the sections of `--help`'s epilogue (SIGNALS, FAULTS, EXIT STATUS, FILES,
/// ENVIRONMENT, EXAMPLES) as sections of their own, and SEE ALSO.
fn main_page(cmd: &clap::Command) -> anyhow::Result<String> {
    let man = new_man(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    // No hyphenation: command and file names are what readers search the page for.
    out.extend(b".nh\n");
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in visible_subcommands(cmd) {
        roff.control("TP", []);
        roff.text([bold(format!("{} {}", cmd.get_name(), sub.get_name()))]);
        let about = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default();
        let mut first = true;
        for para in about.split("\n\n") {
            if !first {
                roff.control("IP", []);
            }
            first = false;
            roff.text([roman(para.replace('\n', " "))]);
        }
        roff.control("IP", []);
        roff.text([
            roman("Options: "),
            bold(format!("{}-{}", cmd.get_name(), sub.get_name())),
            roman(format!("({SECTION}).")),
        ]);
    }
    let epilogue = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    render_epilogue(&mut roff, &epilogue, cmd.get_name());

    roff.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = visible_subcommands(cmd)
        .map(|s| format!("{}-{}({SECTION})", cmd.get_name(), s.get_name()))
        .collect();
    refs.extend(["ipvsadm(8)".into(), "systemd.service(5)".into()]);
    roff.text([roman(format!("{}.", refs.join(", ")))]);
    roff.control("PP", []);
    roff.text([roman(
        "/usr/share/doc/ipvs-herald/examples/ holds complete configurations \
         (all-active BGP director, OSPF site, every BGP key) and routing-daemon snippets.",
    )]);
    out.extend(roff.render().into_bytes());
    man.render_version_section(&mut out)?;
    Ok(one_preamble(&String::from_utf8(out)?))
}

/// ipvs-herald-COMMAND(8): clap_mangen's page of one command (its options), with a pointer back
/// to the main page, where signals, exit statuses and files are described.
fn command_page(parent: &clap::Command, sub: &clap::Command) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let man = new_man(sub.clone());
    man.render_title(&mut out)?;
    out.extend(b".nh\n");
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let mut roff = Roff::new();
    let nested: Vec<_> = visible_subcommands(sub).collect();
    if !nested.is_empty() {
        roff.control("SH", ["COMMANDS"]);
        for cmd in nested {
            let usage = cmd.clone().render_usage().to_string();
            roff.control("TP", []);
            roff.text([bold(usage.trim_start_matches("Usage: ").trim())]);
            let about = cmd.get_long_about().or_else(|| cmd.get_about());
            roff.text([roman(about.map(|s| s.to_string()).unwrap_or_default())]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(format!(
        "{}({SECTION}) for the global options, signals, exit status and files.",
        parent.get_name()
    ))]);
    out.extend(roff.render().into_bytes());
    Ok(one_preamble(&String::from_utf8(out)?))
}

/// Every piece rendered by roff starts with the same two-line preamble (the apostrophe string);
/// a page assembled from several pieces needs it once, at the top.
fn one_preamble(page: &str) -> String {
    let preamble: String = Roff::new().render();
    let mut out = preamble.clone();
    out.push_str(&page.replace(&preamble, ""));
    out
}

/// Renders the `--help` epilogue as man sections. Its layout: a heading is an unindented line
/// ending in ':'; an entry starts at an indent of two spaces; deeper indented lines continue it.
/// An entry whose first line has a term, then two or more spaces, then text becomes a tagged
/// paragraph (term in bold); an entry that is a command line (starts with the program's name) is
/// kept as it is; other entries are prose and are filled into one paragraph.
fn render_epilogue(roff: &mut Roff, text: &str, program: &str) {
    for section in parse_epilogue(text) {
        roff.control("SH", [section.heading.as_str()]);
        let mut prose: Vec<String> = Vec::new();
        let flush = |roff: &mut Roff, prose: &mut Vec<String>| {
            if !prose.is_empty() {
                roff.control("PP", []);
                roff.text([roman(prose.join(" "))]);
                prose.clear();
            }
        };
        for entry in section.entries {
            match entry {
                Entry::Term { term, text } => {
                    flush(roff, &mut prose);
                    roff.control("TP", []);
                    roff.text([bold(term)]);
                    roff.text([roman(text)]);
                }
                Entry::Line(line) if line.starts_with(&format!("{program} ")) => {
                    flush(roff, &mut prose);
                    roff.control("PP", []);
                    roff.control("nf", []);
                    roff.text([italic(line)]);
                    roff.control("fi", []);
                }
                Entry::Line(line) => prose.push(line),
            }
        }
        flush(roff, &mut prose);
    }
}

#[derive(Debug, PartialEq)]
struct Section {
    heading: String,
    entries: Vec<Entry>,
}

#[derive(Debug, PartialEq)]
enum Entry {
    /// `TERM  description`, the description's continuation lines joined to it.
    Term { term: String, text: String },
    /// A line without a term (prose or an example).
    Line(String),
}

fn parse_epilogue(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        if indent == 0 {
            sections.push(Section {
                heading: body.trim_end_matches(':').to_string(),
                entries: Vec::new(),
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            // Text before the first heading belongs to no section; there is none today.
            sections.push(Section {
                heading: "NOTES".into(),
                entries: vec![Entry::Line(body.to_string())],
            });
            continue;
        };
        if indent > 2 {
            if let Some(Entry::Term { text, .. }) = section.entries.last_mut() {
                text.push(' ');
                text.push_str(body);
                continue;
            }
        }
        let entry = match body.split_once("  ") {
            Some((term, rest)) => Entry::Term {
                term: term.to_string(),
                text: rest.trim().to_string(),
            },
            None => Entry::Line(body.to_string()),
        };
        section.entries.push(entry);
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The text `man` shows, without roff markup: enough to assert on words and headings.
    fn plain(roff: &str) -> String {
        roff.lines()
            .map(|l| {
                l.replace("\\-", "-")
                    .replace("\\fB", "")
                    .replace("\\fI", "")
                    .replace("\\fR", "")
                    .replace("\\*(Aq", "'")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn man_page_lists_every_command_and_every_exit_status() {
        let cmd = man_command(crate::Cli::command());
        let page = plain(&main_page(&cmd).unwrap());
        let names: Vec<&str> = visible_subcommands(&cmd).map(|s| s.get_name()).collect();
        for name in [
            "run",
            "dump",
            "check-config",
            "drain",
            "undrain",
            "status",
            "top",
            "flush",
            "generate",
        ] {
            assert!(names.contains(&name), "{name} is not a visible command");
        }
        for name in &names {
            assert!(
                page.contains(&format!("ipvs-herald {name}\n")),
                "man page has no entry for {name}:\n{page}"
            );
            assert!(page.contains(&format!("ipvs-herald-{name}(8)")));
        }
        for heading in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "SIGNALS",
            "FAULTS",
            "EXIT STATUS",
            "FILES",
            "ENVIRONMENT",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                page.contains(&format!(".SH \"{heading}\""))
                    || page.contains(&format!(".SH {heading}\n")),
                "no section {heading}:\n{page}"
            );
        }
        let exit = page.split(".SH \"EXIT STATUS\"").nth(1).unwrap();
        let exit = exit.split(".SH").next().unwrap();
        let restart = crate::daemon::EX_RESTART.to_string();
        for status in ["0", "1", &crate::EX_USAGE.to_string(), &restart] {
            assert!(
                exit.contains(&format!(".TP\n{status}\n")),
                "exit status {status} missing:\n{exit}"
            );
        }
        assert!(exit.contains("SIGABRT"));
    }

    #[test]
    fn help_lists_every_command_and_exit_status() {
        let mut cmd = crate::Cli::command();
        let help = cmd.render_long_help().to_string();
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            assert!(
                help.contains(&format!("\n  {} ", sub.get_name())),
                "--help does not list {}",
                sub.get_name()
            );
        }
        let exit = help.split("EXIT STATUS:").nth(1).expect("no EXIT STATUS");
        let restart = format!("{} ", crate::daemon::EX_RESTART);
        for status in ["0 ", "1 ", "64 ", &restart, "SIGABRT"] {
            assert!(exit.contains(&format!("\n  {status}")), "{status} missing");
        }
        // The short description names every status too, 75 included.
        let about = cmd
            .get_long_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        for status in ["0", "1", "64", restart.trim()] {
            assert!(
                about.contains(&format!(" {status} ")) || about.contains(&format!(" {status},")),
                "long about does not name exit status {status}: {about}"
            );
        }
    }

    #[test]
    fn command_pages_show_their_options() {
        let cmd = man_command(crate::Cli::command());
        let dump = cmd.find_subcommand("dump").unwrap();
        let page = plain(&command_page(&cmd, dump).unwrap());
        assert!(page.contains("\n.TH ipvs-herald-dump 8 "), "{page}");
        assert_eq!(
            page.matches(".ds Aq").count(),
            2,
            "one preamble (two lines):\n{page}"
        );
        assert!(page.contains("--json"), "{page}");
        assert!(page.contains("ipvs-herald(8)"));
        let generate = cmd.find_subcommand("generate").unwrap();
        let page = plain(&command_page(&cmd, generate).unwrap());
        assert!(
            page.contains("ipvs-herald generate man [OPTIONS] <DIR>"),
            "{page}"
        );
        assert!(
            page.contains("ipvs-herald generate completions [OPTIONS] <SHELL> <DIR>"),
            "{page}"
        );
    }

    #[test]
    fn epilogue_terms_continuations_prose_and_examples() {
        let text = "\
EXIT STATUS:
  0    stopped
  64   bad command line
       or configuration
  SIGABRT after a fault

EXAMPLES:
  ipvs-herald dump --json
";
        assert_eq!(
            parse_epilogue(text),
            vec![
                Section {
                    heading: "EXIT STATUS".into(),
                    entries: vec![
                        Entry::Term {
                            term: "0".into(),
                            text: "stopped".into()
                        },
                        Entry::Term {
                            term: "64".into(),
                            text: "bad command line or configuration".into()
                        },
                        Entry::Line("SIGABRT after a fault".into()),
                    ],
                },
                Section {
                    heading: "EXAMPLES".into(),
                    entries: vec![Entry::Line("ipvs-herald dump --json".into())],
                },
            ]
        );
        let mut roff = Roff::new();
        render_epilogue(&mut roff, text, "ipvs-herald");
        let out = roff.render();
        assert!(
            out.contains(".TP\n\\fB64\\fR\nbad command line or configuration\n"),
            "{out}"
        );
        assert!(out.contains(".PP\nSIGABRT after a fault\n"), "{out}");
        assert!(
            out.contains(".nf\n\\fIipvs\\-herald dump \\-\\-json\\fR\n.fi"),
            "{out}"
        );
    }

    #[test]
    fn writes_pages_and_completions_into_a_directory() {
        let dir = std::env::temp_dir().join(format!("ipvs-herald-generate-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let pages = write_man_pages(&dir.join("man"), crate::Cli::command()).unwrap();
        assert_eq!(pages[0], dir.join("man/ipvs-herald.8"));
        assert!(pages.contains(&dir.join("man/ipvs-herald-check-config.8")));
        for shell in ["bash", "zsh", "fish"] {
            let args = GenerateArgs {
                what: What::Completions {
                    shell: shell.parse().unwrap(),
                    dir: dir.join("completions"),
                },
            };
            run(&args, crate::Cli::command()).unwrap();
        }
        for file in ["ipvs-herald.bash", "_ipvs-herald", "ipvs-herald.fish"] {
            let text = fs::read_to_string(dir.join("completions").join(file)).unwrap();
            assert!(text.contains("check-config"), "{file}: {text}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
