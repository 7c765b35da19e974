//! The README's command walkthroughs, run as written. Every ```console block
//! of `tests/cmd/*.md` holds `$ acp …` commands, each followed by what it
//! prints (stdout, then stderr), compared by snapbox: `[..]` matches the rest
//! of a line (or a run of characters inside it), `...` whole lines.
//!
//! What a transcript cannot know in advance (ports, ids signed with the
//! clock) it names instead, because a later command needs the same value:
//! - `[NAME]` (capitals and `_`) in an expected line, not known yet: captures
//!   the word printed there (the text up to the next white space) in the
//!   first output line that starts like the expected one;
//! - `[NAME]` known (in a command or an expected line): that value;
//! - a command ending in ` &` runs in the background (a node): its expected
//!   lines are waited for, in any order, among the lines it prints, and it
//!   is killed when the transcript ends;
//! - a command ending in `# until it matches` is repeated until its output
//!   matches (gossip and certification take a moment);
//! - `? failed` as the first expected line: the command must fail.
//!
//! Commands run in a fresh directory per transcript, with `HOME` there too.
//! Keys are derived from `--key-seed`, so they are printed as they are.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acp_node::launch::read_lines;
use snapbox::{Assert, Data, Redactions};

/// How long a background command may take to print a line, and a repeated
/// command to match.
const PATIENCE: Duration = Duration::from_secs(90);
const UNTIL: &str = "# until it matches";

struct Step {
    line: usize,
    cmd: String,
    expected: Vec<String>,
}

/// The `$` commands of the console blocks, with what follows each.
fn steps(text: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut in_block = false;
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            in_block = !in_block && line.trim() == "```console";
            continued = false;
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(step) = out.last_mut().filter(|_| continued) {
            step.cmd.push(' ');
            step.cmd.push_str(line.trim().trim_end_matches('\\'));
            continued = line.ends_with('\\');
        } else if let Some(cmd) = line.strip_prefix("$ ") {
            out.push(Step {
                line: i + 1,
                cmd: cmd.trim_end_matches('\\').to_owned(),
                expected: Vec::new(),
            });
            continued = line.ends_with('\\');
        } else if let Some(step) = out.last_mut() {
            step.expected.push(line.to_owned());
        }
    }
    // A blank line separates one command's output from the next command.
    for step in &mut out {
        while step.expected.last().is_some_and(|l| l.trim().is_empty()) {
            step.expected.pop();
        }
    }
    out
}

/// Splits a command line the way a POSIX shell would for these commands:
/// quotes, backslash escapes and `#` comments.
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if cur.is_none() => break,
            c if c.is_whitespace() => out.extend(cur.take()),
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => cur.get_or_insert_with(String::new).extend(chars.next()),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    out
}

/// The values captured so far, by placeholder.
#[derive(Default)]
struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    fn substitute(&self, s: &str) -> String {
        self.0
            .iter()
            .fold(s.to_owned(), |s, (name, value)| s.replace(name, value))
    }

    fn redactions(&self) -> Redactions {
        let mut r = Redactions::new();
        for (name, value) in &self.0 {
            r.insert(name, value.clone())
                .unwrap_or_else(|e| panic!("placeholder {name}: {e}"));
        }
        r
    }

    fn assert(&self) -> Assert {
        Assert::new().redact_with(self.redactions())
    }

    /// The first placeholder of `expected` not known yet, with the text
    /// before it.
    fn unknown<'e>(&self, expected: &'e str) -> Option<(&'e str, &'e str)> {
        let mut rest = expected;
        while let Some(start) = rest.find('[') {
            let after = &rest[start + 1..];
            let end = after.find(']')?;
            let name = &rest[start..start + end + 2];
            let is_var = end > 0
                && after[..end]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_');
            if is_var && !self.0.contains_key(name) {
                let at = expected.len() - rest.len() + start;
                return Some((&expected[..at], name));
            }
            rest = &rest[start + end + 2..];
        }
        None
    }

    /// Captures a new placeholder of `expected` from `actual` (one line of
    /// output); true when `expected` has none or it was captured.
    fn capture(&mut self, expected: &str, actual: &str) -> bool {
        let Some((prefix, name)) = self.unknown(expected) else {
            return true;
        };
        let actual = self.redactions().redact(actual);
        let Some(rest) = actual.strip_prefix(prefix) else {
            return false;
        };
        let value: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        if value.is_empty() {
            return false;
        }
        self.0
            .insert(Box::leak(name.to_owned().into_boxed_str()), value);
        // A line may name more than one.
        self.capture(expected, &actual)
    }

    fn line_matches(&mut self, expected: &str, actual: &str) -> bool {
        self.capture(expected, actual)
            && self
                .assert()
                .try_eq(None, Data::text(actual), Data::text(expected))
                .is_ok()
    }
}

/// Background processes, killed when the transcript ends however it ends.
#[derive(Default)]
struct Background(Vec<Child>);

impl Drop for Background {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn command(dir: &Path, argv: &[String]) -> Command {
    let (program, args) = argv.split_first().expect("an empty command");
    assert_eq!(program, "acp", "transcripts run `acp` only, not {program}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_acp"));
    c.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("ACP_DATA_DIR")
        .env_remove("ACP_URL")
        .env_remove("ACP_TOKEN")
        .env("RUST_LOG", "warn");
    c
}

fn start(dir: &Path, argv: &[String], step: &Step, vars: &mut Vars, bg: &mut Background) {
    let log = std::fs::File::create(dir.join(format!("background-{}.log", bg.0.len())))
        .expect("creating a log file");
    let mut child = command(dir, argv)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("starting acp");
    let rx = read_lines(child.stdout.take().expect("piped stdout"));
    bg.0.push(child);
    // The node prints its addresses from more than one task: the expected
    // lines may come in any order.
    let mut pending: Vec<&String> = step.expected.iter().collect();
    let mut seen = Vec::new();
    while !pending.is_empty() {
        let Ok(line) = rx.recv_timeout(PATIENCE) else {
            panic!(
                "line {}: `{}` did not print {pending:?}; it printed:\n{}",
                step.line,
                step.cmd,
                seen.join("\n")
            );
        };
        if let Some(i) = pending
            .iter()
            .position(|want| vars.line_matches(want, &line))
        {
            pending.remove(i);
        }
        seen.push(line);
    }
}

fn run(dir: &Path, step: &Step, vars: &mut Vars) {
    let until = step.cmd.trim_end().ends_with(UNTIL);
    let (must_fail, expected) = match step.expected.split_first() {
        Some((first, rest)) if first == "? failed" => (true, rest),
        _ => (false, &step.expected[..]),
    };
    let argv = words(&vars.substitute(&step.cmd));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = command(dir, &argv).output().expect("running acp");
        let actual = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = actual.lines().collect();
        if lines.len() == expected.len() {
            for (want, line) in expected.iter().zip(&lines) {
                vars.capture(want, line);
            }
        } else {
            // `...` stands for some lines: each placeholder is taken from
            // the first line after the previous one that starts like it.
            let mut at = 0;
            for want in expected {
                if let Some(i) = lines[at..].iter().position(|l| vars.capture(want, l)) {
                    at += i;
                }
            }
        }
        let mut want = expected.join("\n");
        if !want.is_empty() {
            want.push('\n');
        }
        let checked = vars.assert().try_eq(
            Some(&format!("line {}: {}", step.line, step.cmd)),
            Data::text(actual.clone()),
            Data::text(want),
        );
        let failed = !out.status.success();
        match checked {
            Ok(()) if failed == must_fail => return,
            _ if until && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(()) => panic!(
                "line {}: `{}` exited with {} (expected {}):\n{actual}",
                step.line,
                step.cmd,
                out.status,
                if must_fail { "a failure" } else { "success" }
            ),
            Err(e) => panic!("{e}"),
        }
    }
}

fn transcript(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cmd")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("reading the transcript");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut vars = Vars::default();
    let mut bg = Background::default();
    for step in steps(&text) {
        let argv = words(&vars.substitute(&step.cmd));
        if argv.last().is_some_and(|w| w == "&") {
            start(
                dir.path(),
                &argv[..argv.len() - 1],
                &step,
                &mut vars,
                &mut bg,
            );
        } else {
            run(dir.path(), &step, &mut vars);
        }
    }
}

#[test]
fn offline() {
    transcript("offline.md");
}

#[test]
fn three_nodes() {
    transcript("three-nodes.md");
}
