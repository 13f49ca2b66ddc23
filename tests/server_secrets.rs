//! No secret in any output: a secret input's value and a URL's password, fed through every source
//! (environment, profile `env`, profile `values`, `-f`, `--set`) to every command (template, diff,
//! up, ls, status, history, rollback, down) on the test server, on success and on every error
//! path, never reach stdout, stderr or the release record.

mod common;

use std::process::Output;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Fixture, text, within};
use plane_test_apiserver::{Config, TestServer};
use serde_json::Value;

/// How long one plane run may take before the test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

const RELEASE: &str = "minimal";

/// Every secret value and every URL password this file feeds plane carries one of these, so that
/// any piece of one in an output (a line of a multi-line value, an escaped one) is found.
const MARKERS: [&str; 2] = ["s3cr3t", "pa55w0rd"];

/// The URL the runs give RUN_URL when its credentials are not what they test.
const GOOD_URL: &str = "https://app.example.com";

/// The secret input this file adds to the `minimal` fixture (in its copy only).
const TOKEN_INPUT: &str = "  WEB_TOKEN:
    type: secret
    path: web.token
    description: The token the web Secret holds
components:
";

/// Where a run's inputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The environment variables `WEB_TOKEN` and `RUN_URL`.
    Env,
    /// A profile's `env:` section.
    ProfileEnv,
    /// A profile's `values:` for the addon.
    ProfileValues,
    /// A values file given with `-f`.
    File,
    /// `--set web.token=...` and `--set global.url=...`.
    Set,
}

const SOURCES: [Source; 5] = [
    Source::Env,
    Source::ProfileEnv,
    Source::ProfileValues,
    Source::File,
    Source::Set,
];

impl Source {
    /// A short name, part of each secret it gives so that a leak names its source.
    fn tag(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::ProfileEnv => "profile-env",
            Self::ProfileValues => "profile-values",
            Self::File => "file",
            Self::Set => "set",
        }
    }

    /// A secret of this source for one case: the marker, the case and the source.
    fn secret(self, case: &str) -> String {
        format!("s3cr3t-{case}-{}", self.tag())
    }
}

/// What one run is given: arguments, environment, and the values it feeds that must not return.
#[derive(Debug, Clone, Default)]
struct Feed {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// The secret values (and URL passwords) fed, exactly as plane reads them.
    secrets: Vec<String>,
}

impl Feed {
    /// Feeds `token` to WEB_TOKEN (`web.token`) and `url` to RUN_URL (`global.url`) through
    /// `source`, both as YAML text (the environment takes it as it is); a profile or values file
    /// it needs is written into the fixture as `name`. `secrets` are the values that must not
    /// come back.
    fn new(
        fixture: &Fixture,
        source: Source,
        name: &str,
        token: &str,
        url: &str,
        secrets: &[&str],
    ) -> Self {
        let mut feed = Self {
            secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::default()
        };
        match source {
            Source::Env => {
                feed.env.push(("WEB_TOKEN", token.to_owned()));
                feed.env.push(("RUN_URL", url.to_owned()));
            }
            Source::ProfileEnv => feed.profile(
                fixture,
                name,
                &format!("env:\n  WEB_TOKEN: {token}\n  RUN_URL: {url}\n"),
            ),
            Source::ProfileValues => feed.profile(
                fixture,
                name,
                &format!(
                    "values:\n  minimal:\n    global:\n      url: {url}\n    web:\n      token: {token}\n"
                ),
            ),
            Source::File => feed.file(
                fixture,
                name,
                &format!("global:\n  url: {url}\nweb:\n  token: {token}\n"),
            ),
            Source::Set => {
                feed = feed
                    .arg("--set")
                    .arg(&format!("web.token={token}"))
                    .arg("--set")
                    .arg(&format!("global.url={url}"));
            }
        }
        feed
    }

    /// A profile `name` in the fixture's profiles folder with `body`, selected with `--profile`.
    fn profile(&mut self, fixture: &Fixture, name: &str, body: &str) {
        let path = fixture.root().join("profiles").join(format!("{name}.yaml"));
        std::fs::write(path, format!("description: secrets from {name}\n{body}")).unwrap();
        self.args.extend(["--profile".to_owned(), name.to_owned()]);
    }

    /// A values file `name` in the fixture's root with `body`, given with `-f`.
    fn file(&mut self, fixture: &Fixture, name: &str, body: &str) {
        let path = fixture.root().join(format!("{name}.yaml"));
        std::fs::write(&path, body).unwrap();
        self.args
            .extend(["-f".to_owned(), path.to_string_lossy().into_owned()]);
    }

    fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Adds the environment variable `var`.
    fn env(mut self, var: &'static str, value: &str) -> Self {
        self.env.push((var, value.to_owned()));
        self
    }

    /// Adds `secret` to the values that must not come back.
    fn secret(mut self, secret: &str) -> Self {
        self.secrets.push(secret.to_owned());
        self
    }
}

/// The `minimal` fixture with the secret input WEB_TOKEN at `web.token`, whose schema takes at
/// most 40 characters (a schema rule the secret's value can break).
fn fixture() -> Fixture {
    Fixture::addon("minimal")
        .patch_file("addon.yaml", "components:\n", TOKEN_INPUT)
        .patch_file(
            "values.schema.json",
            "\"minLength\": 1",
            "\"minLength\": 1,\n          \"maxLength\": 40",
        )
}

/// [`fixture`] whose templates fail on tokens with a given ending: `-boom` a render error
/// (Tera's `throw`) that names the token, `-yaml` rendered YAML that does not parse on the
/// token's line, `-name` the token as the Secret's (invalid) name, `-label` the token in the pod
/// template's labels, which the selector does not match (refused by the API server, which quotes
/// the labels).
fn trap_fixture() -> Fixture {
    fixture()
        .with_file(
            "components/web/secret.yaml.tera",
            r#"apiVersion: v1
kind: Secret
metadata:
  name: {% if values.web.token is ending_with("-name") %}{{ values.web.token }}{% else %}web-token{% endif %}
  namespace: minimal
type: Opaque
stringData:
  token: {{ values.web.token | json_encode() }}
{% if values.web.token is ending_with("-boom") %}{{ throw(message="the token " ~ values.web.token ~ " is refused") }}{% endif %}
{%- if values.web.token is ending_with("-yaml") %}
  broken: {{ values.web.token }}: [
{%- endif %}
"#,
        )
        .patch_file(
            "components/web/deployment.yaml.tera",
            "    matchLabels: {app: web}",
            r#"    matchLabels: {app: web{% if values.web.token is ending_with("-label") %}, tier: front{% endif %}}"#,
        )
        .patch_file(
            "components/web/deployment.yaml.tera",
            "      labels: {app: web}",
            r#"      labels: {app: web{% if values.web.token is ending_with("-label") %}, token: {{ values.web.token | json_encode() }}{% endif %}}"#,
        )
}

/// [`fixture`] whose Deployment also carries the token, in a pod template annotation: a secret
/// outside a Secret's data, which diffs must mask and the record must never keep.
fn annotated_fixture() -> Fixture {
    fixture().patch_file(
        "components/web/deployment.yaml.tera",
        "      labels: {app: web}",
        "      labels: {app: web}\n      annotations: {token: {{ values.web.token | json_encode() }}}",
    )
}

/// `plane <command> minimal` with the fixture's bundles (and the test server for every command
/// but `template`), fed `feed`, plus `args`.
fn run(fixture: &Fixture, srv: &TestServer, command: &str, feed: &Feed, args: &[&str]) -> Output {
    let mut cmd = if command == "template" {
        fixture.template(&[])
    } else {
        fixture.cluster(command, srv.kubeconfig_path(), &[])
    };
    // The common environment removes the fixture's own inputs; this one is the test's.
    cmd.env_remove("WEB_TOKEN");
    cmd.args(&feed.args).args(args);
    for (var, value) in &feed.env {
        cmd.env(var, value);
    }
    within(cmd, LIMIT)
}

/// `plane <args> --kubeconfig <the test server's>`: the commands that take no bundle.
fn run_plain(srv: &TestServer, args: &[&str]) -> Output {
    let mut cmd = common::plane();
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(srv.kubeconfig_path());
    within(cmd, LIMIT)
}

/// Everything the release record holds, decoded, if there is one.
fn record(srv: &TestServer) -> Option<String> {
    srv.get_object(
        "v1",
        "Secret",
        Some("plane-system"),
        &format!("plane-release-{RELEASE}"),
    )
    .map(|secret| common::record_text(&secret))
}

/// The value of key `token` of the live Secret `minimal/<name>`.
fn live_token(srv: &TestServer, name: &str) -> String {
    let secret = srv
        .get_object("v1", "Secret", Some("minimal"), name)
        .unwrap_or_else(|| panic!("no Secret/minimal/{name}"));
    let encoded = secret["data"]["token"].as_str().expect("data.token");
    String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", text(&out.stdout)))
}

/// What the outputs showed that they must not, gathered over a whole test so that one failure
/// lists every leak at once.
#[derive(Default)]
struct Leaks {
    found: Vec<String>,
    /// Every secret fed so far: the record may hold none of any run's.
    fed: Vec<String>,
}

impl Leaks {
    /// Looks in `text` for a marker, and for each of `secrets` as it is and base64-encoded (as a
    /// Secret's `data` would show it).
    fn look(&mut self, what: &str, text: &str, secrets: &[String]) {
        let mut needles: Vec<String> = MARKERS.iter().map(|m| (*m).to_owned()).collect();
        for secret in secrets {
            needles.push(secret.clone());
            needles.push(STANDARD.encode(secret));
        }
        for needle in needles {
            if let Some(at) = text.find(&needle) {
                let around = excerpt(text, at, needle.len());
                self.found
                    .push(format!("{what} shows {needle:?}: {around:?}"));
            }
        }
    }

    /// Looks at both streams of a run fed `feed`.
    fn output(&mut self, what: &str, out: &Output, feed: &Feed) {
        self.fed.extend(feed.secrets.iter().cloned());
        self.look(
            &format!("{what}: stdout"),
            &text(&out.stdout),
            &feed.secrets,
        );
        self.look(
            &format!("{what}: stderr"),
            &text(&out.stderr),
            &feed.secrets,
        );
    }

    /// Looks at the release record, for every secret fed so far.
    fn record(&mut self, what: &str, srv: &TestServer) {
        if let Some(record) = record(srv) {
            let fed = self.fed.clone();
            self.look(&format!("{what}: the record"), &record, &fed);
        }
    }

    /// Records an expectation about masking that did not hold, without stopping the test.
    fn wrong(&mut self, what: String) {
        self.found.push(what);
    }

    fn assert_none(&self) {
        assert!(
            self.found.is_empty(),
            "{} finding(s):\n{}",
            self.found.len(),
            self.found.join("\n")
        );
    }
}

/// The line of `text` around `len` bytes at `at`, at most 80 bytes of it either side.
fn excerpt(text: &str, at: usize, len: usize) -> &str {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let mut from = line_start.max(at.saturating_sub(80));
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let mut to = line_end.min(at + len + 80);
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    &text[from..to]
}

/// The runs after a deploy that take no inputs: ls, status and history, as tables and JSON. None
/// of them learns a secret, so any they could read back would show.
fn read_back(srv: &TestServer, leaks: &mut Leaks, when: &str) {
    let none = Feed::default();
    for args in [
        &["ls"][..],
        &["ls", "-o", "json"],
        &["status"],
        &["status", "-o", "json"],
        &["history", RELEASE],
        &["history", RELEASE, "-o", "json"],
    ] {
        let out = run_plain(srv, args);
        let what = format!("{when}: plane {}", args.join(" "));
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        if args.contains(&"json") {
            json(&out);
        }
        leaks.output(&what, &out, &none);
    }
    leaks.record(when, srv);
}

#[test]
fn valid_secrets_from_every_source_deploy_and_never_show() {
    let srv = TestServer::start(Config::default());
    let fixture = fixture();
    let mut leaks = Leaks::default();
    let mut revision = 0;
    for source in SOURCES {
        let token = source.secret("valid");
        let feed = Feed::new(
            &fixture,
            source,
            &format!("valid-{}", source.tag()),
            &token,
            GOOD_URL,
            &[&token],
        );
        let label = |command: &str| format!("{command} (token from {source:?})");

        // template: the rendered Secret holds the token, masked.
        let out = run(&fixture, &srv, "template", &feed, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("  token: ***\n"),
            "{}: the token is not shown masked:\n{}",
            label("template"),
            text(&out.stdout)
        );
        leaks.output(&label("template"), &out, &feed);
        let out = run(&fixture, &srv, "template", &feed, &["-o", "json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let list = json(&out);
        let secret = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "web-token")
            .expect("the web-token Secret");
        assert_eq!(secret["stringData"]["token"], "***", "{secret}");
        leaks.output(&label("template -o json"), &out, &feed);

        // diff, as text and JSON, and up's dry run: the Secret changes, masked.
        for args in [&[][..], &["-o", "json"]] {
            let out = run(&fixture, &srv, "diff", &feed, args);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let stdout = text(&out.stdout);
            assert!(stdout.contains("Secret/minimal/web-token"), "{stdout}");
            // Once deployed, the token changes: the diff says so, masked.
            if revision > 0 {
                assert!(stdout.contains("*** (after)"), "{stdout}");
            }
            leaks.output(&label(&format!("diff {}", args.join(" "))), &out, &feed);
        }
        let out = run(&fixture, &srv, "up", &feed, &["--dry-run", "-v"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        leaks.output(&label("up --dry-run"), &out, &feed);

        // up: the cluster gets the token itself.
        let out = run(
            &fixture,
            &srv,
            "up",
            &feed,
            &["--yes", "-v", "--timeout", "30s"],
        );
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", label("up"));
        revision += 1;
        assert!(
            stderr.contains(&format!("release minimal revision {revision} deployed")),
            "{stderr}"
        );
        assert_eq!(live_token(&srv, "web-token"), token, "{}", label("up"));
        leaks.output(&label("up"), &out, &feed);
        read_back(&srv, &mut leaks, &label("after up"));
        // The record keeps the revision's objects (the token is in a Secret's data only), so
        // what it holds was looked at, not an empty record.
        let history = json(&run_plain(&srv, &["history", RELEASE, "-o", "json"]));
        assert_eq!(history[0]["revision"], revision, "{history}");
        assert_eq!(history[0]["restorable"], true, "{history}");
    }

    // rollback to revision 4 (the `-f` one): the Secret keeps its live value, the set one.
    let none = Feed::default();
    let out = run_plain(&srv, &["rollback", RELEASE, "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    leaks.output("rollback --dry-run", &out, &none);
    let out = run_plain(&srv, &["rollback", RELEASE, "--yes", "--timeout", "30s"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "rollback: {stderr}");
    assert!(
        stderr.contains("Secret/minimal/web-token keeps its live values"),
        "{stderr}"
    );
    assert_eq!(live_token(&srv, "web-token"), Source::Set.secret("valid"));
    leaks.output("rollback", &out, &none);
    read_back(&srv, &mut leaks, "after rollback");
    let history = json(&run_plain(&srv, &["history", RELEASE, "-o", "json"]));
    assert_eq!(history[0]["revision"], 6, "{history}");
    assert_eq!(history[0]["rollbackOf"], 4, "{history}");

    let out = run_plain(&srv, &["down", RELEASE, "--yes"]);
    assert!(out.status.success(), "down: {}", text(&out.stderr));
    leaks.output("down", &out, &none);
    assert!(record(&srv).is_none(), "down left the record");
    leaks.assert_none();
}

/// One bad input: what it feeds, what the error must say, and whether the error names the value
/// (then masked).
struct Bad {
    what: String,
    feed: Feed,
    says: &'static str,
    masked: bool,
}

/// Every bad input this file knows, from every source it can come from.
fn bad_inputs(fixture: &Fixture) -> Vec<Bad> {
    let mut bad = Vec::new();
    for source in SOURCES {
        let tag = source.tag();
        let is_set = source == Source::Set;
        let mut case = |case: &str,
                        token: &str,
                        url: &str,
                        secrets: &[&str],
                        says: &'static str,
                        masked: bool| {
            bad.push(Bad {
                what: format!("{case} from {source:?}"),
                feed: Feed::new(
                    fixture,
                    source,
                    &format!("{case}-{tag}"),
                    token,
                    url,
                    secrets,
                ),
                says,
                masked,
            });
        };
        let too_long = format!("{}-{}", source.secret("too-long"), "x".repeat(30));
        case(
            "too-long",
            &too_long,
            GOOD_URL,
            &[&too_long],
            "invalid value at `web.token`",
            is_set,
        );
        let wrong_type = "WEB_TOKEN is not a valid secret string";
        if source != Source::Env {
            let inner = source.secret("mapping");
            case(
                "mapping",
                &format!("{{key: {inner}}}"),
                GOOD_URL,
                &[&inner],
                wrong_type,
                is_set,
            );
            let inner = source.secret("list");
            case(
                "list",
                &format!("[{inner}]"),
                GOOD_URL,
                &[&inner],
                wrong_type,
                is_set,
            );
            // A number: no marker, so it is looked for as it is.
            let number = format!("91827364{}", tag.len());
            case("number", &number, GOOD_URL, &[&number], wrong_type, is_set);
        }
        let token = source.secret("beside-a-bad-url");
        let password = format!("pa55w0rd-query-{tag}");
        case(
            "url-with-credentials-and-query",
            &token,
            &format!("https://alice:{password}@app.example.com/?q=1"),
            &[&token, &password],
            "RUN_URL is not a valid URL",
            true,
        );
        let password = format!("pa55w0rd-{tag}");
        case(
            "url-with-credentials",
            &token,
            &format!("https://alice:{password}@app.example.com"),
            &[&token, &password],
            "the URL must not carry credentials",
            true,
        );
    }

    // Only `--set` can be malformed, or give the secret through its parent.
    let set = |args: &[&str]| {
        args.iter()
            .fold(Feed::default(), |feed, a| feed.arg("--set").arg(a))
    };
    bad.push(Bad {
        what: "a malformed --set of the secret".into(),
        feed: set(&["web.token=[unclosed-s3cr3t-set"])
            .env("RUN_URL", GOOD_URL)
            .secret("[unclosed-s3cr3t-set"),
        says: "malformed --set argument",
        masked: true,
    });
    bad.push(Bad {
        what: "a malformed --set of the URL".into(),
        feed: set(&["global.url=[https://alice:pa55w0rd-unclosed@app.example.com"])
            .secret("pa55w0rd-unclosed"),
        says: "malformed --set argument",
        masked: true,
    });
    bad.push(Bad {
        what: "the secret in a --set of its parent, beside a bad value".into(),
        feed: set(&["web={token: s3cr3t-parent-set, image: bad}"])
            .env("RUN_URL", GOOD_URL)
            .secret("s3cr3t-parent-set"),
        says: "invalid value at `web.image`",
        masked: true,
    });

    // Files and profiles that do not parse, or set the secret twice, are never learnt from.
    let mut unreadable =
        |what: &str, source: Source, body: &str, says: &'static str, secrets: &[&str]| {
            let mut feed = Feed::default().env("RUN_URL", GOOD_URL).secret(secrets[0]);
            for secret in &secrets[1..] {
                feed = feed.secret(secret);
            }
            let name = format!("unreadable-{}", bad.len());
            if source == Source::File {
                feed.file(fixture, &name, body);
            } else {
                feed.profile(fixture, &name, body);
            }
            bad.push(Bad {
                what: what.to_owned(),
                feed,
                says,
                masked: false,
            });
        };
    unreadable(
        "a values file that is not YAML",
        Source::File,
        "web:\n  token: s3cr3t-unparsed-file\n  labels: [unclosed\n",
        "invalid YAML",
        &["s3cr3t-unparsed-file"],
    );
    unreadable(
        "a values file that sets the secret twice",
        Source::File,
        "web:\n  token: s3cr3t-first-file\n  token: s3cr3t-second-file\n",
        "duplicate key `token`",
        &["s3cr3t-first-file", "s3cr3t-second-file"],
    );
    unreadable(
        "a profile that is not YAML",
        Source::ProfileEnv,
        "env:\n  WEB_TOKEN: s3cr3t-unparsed-profile\n  RUN_URL: [unclosed\n",
        "invalid profile",
        &["s3cr3t-unparsed-profile"],
    );
    unreadable(
        "a profile that sets the secret twice",
        Source::ProfileEnv,
        "env:\n  WEB_TOKEN: s3cr3t-first-profile\n  WEB_TOKEN: s3cr3t-second-profile\n",
        "duplicate key `WEB_TOKEN`",
        &["s3cr3t-first-profile", "s3cr3t-second-profile"],
    );
    bad
}

#[test]
fn bad_inputs_from_every_source_are_refused_without_showing_a_secret() {
    let srv = TestServer::start(Config::default());
    let fixture = fixture();
    let mut leaks = Leaks::default();
    let bad = bad_inputs(&fixture);
    for case in &bad {
        for (command, args) in [
            ("template", &[][..]),
            ("template", &["-o", "json"]),
            ("diff", &[]),
            ("diff", &["-o", "json"]),
            ("up", &["--yes", "-v"]),
        ] {
            let what = format!("{command} {} with {}", args.join(" "), case.what);
            let out = run(&fixture, &srv, command, &case.feed, args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            assert!(stderr.contains(case.says), "{what}: {stderr}");
            if case.masked && !stderr.contains("***") {
                leaks.wrong(format!("{what}: the value is not named masked: {stderr}"));
            }
            leaks.output(&what, &out, &case.feed);
        }
    }
    assert!(
        srv.requests().iter().all(|r| !r.is_mutating()),
        "a bad input reached a write"
    );
    assert!(record(&srv).is_none(), "a bad input left a record");
    leaks.assert_none();
}

#[test]
fn render_check_and_server_errors_mask_the_secret_they_name() {
    let srv = TestServer::start(Config::default());
    let fixture = trap_fixture();
    let mut leaks = Leaks::default();
    // (token ending, what the error says, what it shows masked)
    let traps = [
        ("boom", "cannot render template", "the token *** is refused"),
        (
            "yaml",
            "template rendered invalid YAML",
            "the rendered line reads:   broken: ***: [",
        ),
        (
            "Name",
            "has an invalid metadata.name `***`",
            "Secret/minimal/***",
        ),
    ];
    for source in SOURCES {
        for (ending, says, shows) in traps {
            // The Secret's name must be invalid: upper case does it.
            let token = format!("{}-{}", source.secret("trap"), ending.to_lowercase());
            let token = if ending == "Name" {
                token.replace("trap", "Trap")
            } else {
                token
            };
            let feed = Feed::new(
                &fixture,
                source,
                &format!("trap-{ending}-{}", source.tag()),
                &token,
                GOOD_URL,
                &[&token],
            );
            for (command, args) in [
                ("template", &[][..]),
                ("diff", &[]),
                ("up", &["--yes", "-v"]),
            ] {
                let what = format!("{command} with a -{ending} token from {source:?}");
                let out = run(&fixture, &srv, command, &feed, args);
                let stderr = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
                assert!(stderr.contains(says), "{what}: {stderr}");
                if !stderr.contains(shows) {
                    leaks.wrong(format!("{what}: no {shows:?} in {stderr}"));
                }
                leaks.output(&what, &out, &feed);
            }
        }
    }
    assert!(
        srv.requests().iter().all(|r| !r.is_mutating()),
        "a render error reached a write"
    );

    // The API server refuses the labels and quotes them: the token among them is masked.
    for source in SOURCES {
        let token = format!("{}-label", source.secret("server"));
        let feed = Feed::new(
            &fixture,
            source,
            &format!("trap-label-{}", source.tag()),
            &token,
            GOOD_URL,
            &[&token],
        );
        let out = run(&fixture, &srv, "template", &feed, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("token: ***"));
        leaks.output(
            &format!("template with a -label token from {source:?}"),
            &out,
            &feed,
        );
        // `up` first: a diff dry-runs the Deployment only once its namespace exists.
        for (command, args) in [("up", &["--yes", "-v"][..]), ("diff", &[])] {
            let what = format!("{command} with a -label token from {source:?}");
            let out = run(&fixture, &srv, command, &feed, args);
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{what}: {stderr}");
            assert!(
                stderr.contains("`selector` does not match template `labels`"),
                "{what}: {stderr}"
            );
            if !stderr.contains(r#""token":"***""#) {
                leaks.wrong(format!("{what}: the label is not shown masked: {stderr}"));
            }
            leaks.output(&what, &out, &feed);
            leaks.record(&what, &srv);
        }
    }
    leaks.assert_none();
}

#[test]
fn a_secret_outside_a_secret_is_masked_in_diffs_and_never_recorded() {
    let srv = TestServer::start(Config::default());
    let fixture = annotated_fixture();
    let mut leaks = Leaks::default();
    let mut revision = 0;
    for source in SOURCES {
        let token = source.secret("annotated");
        let feed = Feed::new(
            &fixture,
            source,
            &format!("annotated-{}", source.tag()),
            &token,
            GOOD_URL,
            &[&token],
        );
        let label = |command: &str| format!("{command} (token from {source:?})");
        for args in [&[][..], &["-o", "json"]] {
            let out = run(&fixture, &srv, "template", &feed, args);
            assert!(out.status.success(), "{}", text(&out.stderr));
            leaks.output(&label(&format!("template {}", args.join(" "))), &out, &feed);
        }
        // From the second run on, the live Deployment holds the previous token: a diff shows
        // what changes, and neither value may show.
        for args in [&[][..], &["-o", "json"]] {
            let out = run(&fixture, &srv, "diff", &feed, args);
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert!(
                text(&out.stdout).contains("Deployment/minimal/web"),
                "{}",
                text(&out.stdout)
            );
            leaks.output(&label(&format!("diff {}", args.join(" "))), &out, &feed);
        }
        let out = run(
            &fixture,
            &srv,
            "up",
            &feed,
            &["--yes", "-v", "--timeout", "30s"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        revision += 1;
        leaks.output(&label("up"), &out, &feed);
        let deployment = srv
            .get_object("apps/v1", "Deployment", Some("minimal"), "web")
            .unwrap();
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["annotations"]["token"], token,
            "the annotation did not reach the cluster"
        );
        read_back(&srv, &mut leaks, &label("after up"));
        // The record knows the revision but not its objects.
        let history = json(&run_plain(&srv, &["history", RELEASE, "-o", "json"]));
        assert_eq!(history[0]["revision"], revision, "{history}");
        assert_eq!(history[0]["restorable"], false, "{history}");
    }

    // No revision can be restored, and rollback says why.
    let out = run_plain(&srv, &["rollback", RELEASE, "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "rollback: {stderr}");
    assert!(stderr.contains("cannot be restored"), "{stderr}");
    if !stderr.contains("secret") {
        leaks.wrong(format!(
            "rollback of a revision withheld for its secret does not say so: {stderr}"
        ));
    }
    leaks.output("rollback", &out, &Feed::default());
    let out = run_plain(&srv, &["down", RELEASE, "--yes"]);
    assert!(out.status.success(), "down: {}", text(&out.stderr));
    leaks.output("down", &out, &Feed::default());
    leaks.assert_none();
}

#[test]
fn secrets_that_yaml_or_json_must_escape_never_show_either() {
    let srv = TestServer::start(Config::default());
    let fixture = annotated_fixture();
    let mut leaks = Leaks::default();
    // Each token needs escaping or quoting somewhere: in JSON (`"`, `\`, a tab, a line break) or
    // in YAML (a line break, a tab, `: ` and `'`); the second text is how the source spells it
    // (the environment takes it as it is).
    let cases = [
        (Source::Env, r#"quote"s3cr3t-4401"#, r#"quote"s3cr3t-4401"#),
        (
            Source::Set,
            r"back\slash-s3cr3t-4402",
            r"back\slash-s3cr3t-4402",
        ),
        (
            Source::File,
            "line one\ns3cr3t-4403",
            r#""line one\ns3cr3t-4403""#,
        ),
        (
            Source::ProfileEnv,
            "tab\ts3cr3t-4404",
            r#""tab\ts3cr3t-4404""#,
        ),
        (
            Source::ProfileValues,
            "it's: s3cr3t-4405",
            r#""it's: s3cr3t-4405""#,
        ),
    ];
    for (source, token, spelt) in cases {
        let feed = Feed::new(
            &fixture,
            source,
            &format!("escaped-{}", source.tag()),
            spelt,
            GOOD_URL,
            &[token],
        );
        let label = |command: &str| format!("{command} (token {token:?} from {source:?})");
        for (command, args) in [
            ("template", &[][..]),
            ("template", &["-o", "json"]),
            ("diff", &[]),
            ("diff", &["-o", "json"]),
        ] {
            let out = run(&fixture, &srv, command, &feed, args);
            assert!(out.status.success(), "{}", text(&out.stderr));
            leaks.output(
                &label(&format!("{command} {}", args.join(" "))),
                &out,
                &feed,
            );
        }
        let out = run(
            &fixture,
            &srv,
            "up",
            &feed,
            &["--yes", "-v", "--timeout", "30s"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(live_token(&srv, "web-token"), token, "{}", label("up"));
        leaks.output(&label("up"), &out, &feed);
        read_back(&srv, &mut leaks, &label("after up"));
        // Each case on its own: no earlier token live for the next diff to show.
        let out = run_plain(&srv, &["down", RELEASE, "--yes"]);
        assert!(out.status.success(), "down: {}", text(&out.stderr));
        leaks.output(&label("down"), &out, &Feed::default());
    }
    leaks.assert_none();
}
