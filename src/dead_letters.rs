//! `sluice dead-letters …`: list, replay and purge dead letters from a shell, through the API of
//! a running Sluice (the letters live in its queue, which only it may open). Logs in as an
//! administrator whose password comes on standard input, never on the command line.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[derive(Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// The newest dead letters that match, with their reason and record.
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        filter: FilterArgs,
        /// How many, newest first (at most 1,000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send the matching records through validation and the processor again, once what
    /// dead-lettered them is fixed. With --dry-run, only count them.
    Replay {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        dry_run: bool,
    },
    /// Drop the matching letters from the list. With --dry-run, only count them.
    Purge {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which Sluice, and who asks.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The API's address, as `sluice serve` printed it.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An administrator's username; the password is the first line of standard input.
    #[arg(long)]
    username: String,
    /// Trust this PEM certificate authority for an https URL (besides the system's).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
}

/// The letters a command is about: all of the conditions given.
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// validate, document, process or index.
    #[arg(long)]
    stage: Option<String>,
    /// The reason's code (oversized, malformed_json, store_refused, …).
    #[arg(long)]
    code: Option<String>,
    /// Failed at or after: RFC 3339 or epoch milliseconds.
    #[arg(long)]
    from: Option<String>,
    /// Failed at or before: RFC 3339 or epoch milliseconds.
    #[arg(long)]
    to: Option<String>,
    /// A letter's `letter_id`; repeat for several.
    #[arg(long = "id", value_name = "LETTER_ID")]
    ids: Vec<String>,
}

impl FilterArgs {
    /// The conditions given, by the name the API takes them under.
    fn conditions(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [
            ("stage", &self.stage),
            ("code", &self.code),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_ref()?)))
    }

    /// The body of a replay or a purge.
    fn selection(&self, dry_run: bool) -> Value {
        let mut selection = json!({"dry_run": dry_run});
        for (name, value) in self.conditions() {
            selection[name] = json!(value);
        }
        if !self.ids.is_empty() {
            selection["ids"] = json!(self.ids);
        }
        selection
    }

    /// The query of a listing.
    fn query(&self, limit: u32) -> Vec<(&'static str, String)> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(self.conditions().map(|(name, value)| (name, value.clone())));
        if !self.ids.is_empty() {
            query.push(("ids", self.ids.join(",")));
        }
        query
    }
}

pub fn run(command: DeadLetterCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(execute(command))
}

async fn execute(command: DeadLetterCommand) -> anyhow::Result<()> {
    let answer = match &command {
        DeadLetterCommand::List {
            server,
            filter,
            limit,
        } => {
            let session = Session::open(server).await?;
            let url = format!("{}/api/dead-letters", session.url);
            let request = session.client.get(url).query(&filter.query(*limit));
            session.send(request).await?
        }
        DeadLetterCommand::Replay {
            server,
            filter,
            dry_run,
        } => act(server, "replay", filter.selection(*dry_run)).await?,
        DeadLetterCommand::Purge {
            server,
            filter,
            dry_run,
        } => act(server, "purge", filter.selection(*dry_run)).await?,
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// `POST /api/dead-letters/{action}` with `selection`.
async fn act(server: &ServerArgs, action: &str, selection: Value) -> anyhow::Result<Value> {
    let session = Session::open(server).await?;
    let url = format!("{}/api/dead-letters/{action}", session.url);
    let request = session.client.post(url).json(&selection);
    session.send(request).await
}

/// A client logged in as the administrator.
struct Session {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Session {
    async fn open(server: &ServerArgs) -> anyhow::Result<Session> {
        let mut password = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut password)
            .context("reading the password from standard input")?;
        let password = password.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            bail!("give the password of {} on standard input", server.username);
        }
        let mut client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(300));
        if let Some(path) = &server.cacert {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let authority = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            client = client.add_root_certificate(authority);
        }
        let client = client.build().context("building the HTTP client")?;
        let url = server.url.trim_end_matches('/').to_owned();
        let mut session = Session {
            client,
            url,
            token: String::new(),
        };
        let login = session
            .client
            .post(format!("{}/api/auth/login", session.url))
            .json(&json!({"username": server.username, "password": password}));
        let answer = session.send(login).await?;
        session.token = answer["access_token"]
            .as_str()
            .context("the login answer has no access_token")?
            .to_owned();
        Ok(session)
    }

    /// Sends `request` (with the session's token once logged in); its JSON answer, or the
    /// server's error as the error.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let request = if self.token.is_empty() {
            request
        } else {
            request.bearer_auth(&self.token)
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("is Sluice running at {}?", self.url))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = answer["error"]["message"].as_str().unwrap_or("no message");
            bail!("{status}: {message}");
        }
        Ok(answer)
    }
}
