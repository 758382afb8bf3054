//! `sluice user …`: manage accounts straight in the meta store, for whoever runs Sluice. This is
//! how the first admin is made, and how an admin is restored when nobody can log in as one.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use sluice_auth::Role;
use sluice_auth::accounts::{NewUser, UserFilter};
use sluice_config::Config;
use sluice_meta::Page;

use crate::ConfigArgs;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input, never from the command line.
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        username: String,
        /// viewer, analyst, moderator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List every user.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Give a user another role (the last admin cannot be demoted).
    SetRole {
        #[command(flatten)]
        target: Target,
        username: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
}

/// Which meta store: the configuration's, with the data directory overridable as for `serve`.
#[derive(Debug, clap::Args)]
pub struct Target {
    #[command(flatten)]
    config: ConfigArgs,
    /// The data directory `sluice serve` uses (default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

impl Target {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }
}

pub fn run(command: UserCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(execute(command))
}

async fn execute(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            target,
            username,
            role,
            email,
            password_stdin: _,
        } => {
            let password = read_password()?;
            let accounts = crate::backends::open_accounts(&target.config()?).await?;
            let user = accounts
                .create_user(NewUser {
                    username,
                    password,
                    email,
                    display_name: None,
                    role,
                })
                .await?;
            println!("created {} ({}), id {}", user.username, user.role, user.id);
        }
        UserCommand::List { target } => {
            let accounts = crate::backends::open_accounts(&target.config()?).await?;
            let mut offset = 0;
            println!("{:<36} {:<24} {:<10} EMAIL", "ID", "USERNAME", "ROLE");
            loop {
                let page = Page { offset, limit: 500 };
                let (users, _) = accounts.list_users(&UserFilter::default(), page).await?;
                for user in &users {
                    println!(
                        "{:<36} {:<24} {:<10} {}",
                        user.id,
                        user.username,
                        user.role,
                        user.email.as_deref().unwrap_or("-")
                    );
                }
                if users.len() < 500 {
                    break;
                }
                offset += 500;
            }
        }
        UserCommand::SetRole {
            target,
            username,
            role,
        } => {
            let accounts = crate::backends::open_accounts(&target.config()?).await?;
            let user = accounts.set_role(&username, role).await?;
            println!("{} is now {}", user.username, user.role);
        }
    }
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!(
            "no password on standard input (e.g. `printf '%s\\n' \"$PASSWORD\" | sluice user create …`)"
        );
    }
    Ok(password)
}
