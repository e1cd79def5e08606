//! The command line (issue 7 item 7): `avail agent` runs the agent, every other command is a
//! request to the running agent's local API, printed for people by default or as the API's
//! JSON with `--json`.

use std::path::PathBuf;
use std::time::Duration;

use avail_client::config::AccountSettings;
use avail_client::http::{HttpClient, TlsMode};
use axum::http::Method;
use base64::Engine as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

/// Longer than the agent's longest wait (an XCAP sync with retries, or a 25 s long poll).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Picture files larger than this are refused (the agent's request limit, base64 included).
const MAX_AVATAR_BYTES: u64 = 6 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "avail",
    version,
    about = "SIP SIMPLE presence client (Blink compatible)"
)]
pub struct Cli {
    /// Account configuration file (TOML).
    #[arg(long, short, env = "AVAIL_CONFIG", default_value = "avail.toml")]
    pub config: PathBuf,
    /// The account to use when the file has several: its address, or a user part only it
    /// has (default: `avail agent` runs every account, other commands use the first).
    #[arg(long, short, env = "AVAIL_ACCOUNT", global = true)]
    pub account: Option<String>,
    /// Address of the agent's API (default: read from <data_dir>/agent.addr).
    #[arg(long, env = "AVAIL_API")]
    pub api: Option<String>,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the background agents of the configured accounts, or of the one --account names
    /// (registration, publishing, subscriptions, XCAP, local API).
    Agent,
    /// Show your availability, or set it: available, away, busy or invisible.
    Status {
        state: Option<String>,
        /// The note shown under your name (empty clears it).
        #[arg(long, short)]
        note: Option<String>,
    },
    /// Mark a call as started or ended: Busy "On the phone" while it lasts.
    Call {
        #[arg(value_parser = ["start", "end"])]
        what: String,
    },
    /// Report the seconds since the last user input (auto-away past the idle threshold).
    Idle { seconds: u64 },
    /// Your contacts and their availability.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Contact groups.
    Groups {
        #[command(subcommand)]
        command: Option<GroupsCommand>,
    },
    /// People asking to see your availability.
    #[command(subcommand)]
    Requests(RequestsCommand),
    /// Blocked addresses.
    Blocked,
    /// Who currently sees your availability.
    Watchers,
    /// Everything a contact publishes: devices, notes, GRUUs, capabilities.
    Info { contact: String },
    /// Follow changes live.
    Watch,
    /// The note watchers see while you are offline.
    OfflineNote {
        note: Option<String>,
        #[arg(long, conflicts_with = "note")]
        clear: bool,
    },
    /// Set your avatar from a PNG, JPEG or GIF file (sent as PNG scaled to fit 256x256), or
    /// remove it.
    Avatar {
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        remove: bool,
    },
    /// Print the address of the agent's web UI, to open in a browser.
    Ui,
}

#[derive(Subcommand, Debug)]
pub enum ContactsCommand {
    /// List contacts with state and note.
    List,
    /// Add a contact (its presence is shown to it and subscribed to).
    Add {
        uri: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Remove a contact (by id, name or address).
    Remove { contact: String },
    /// Rename a contact, add or remove an address, or change its presence policy.
    Edit {
        contact: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        add_uri: Option<String>,
        #[arg(long)]
        remove_uri: Option<String>,
        /// allow, block or default.
        #[arg(long, value_parser = ["allow", "block", "default"])]
        presence: Option<String>,
    },
    /// Move a contact to a group (no group: out of every group).
    Move {
        contact: String,
        group: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List groups and their members.
    List,
    /// Add an empty group.
    Add { name: String },
    /// Remove a group (its contacts stay).
    Remove { group: String },
}

#[derive(Subcommand, Debug)]
pub enum RequestsCommand {
    /// Pending requests.
    List,
    /// Accept: add (or update) a contact that sees your availability.
    Accept {
        uri: String,
        #[arg(long)]
        name: Option<String>,
        /// Merge the address into this existing contact.
        #[arg(long)]
        into: Option<String>,
    },
    /// Block: the address sees you only as offline.
    Block { uri: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] avail_client::config::ConfigError),
    #[error("no running agent for this account ({0}); start it with `avail agent`")]
    NoAgent(String),
    #[error("{0}")]
    Api(String),
    #[error("{0}")]
    Input(String),
}

/// A client of one agent's API.
pub struct ApiClient {
    http: HttpClient,
    /// `host:port` of the agent, as its `Host` check accepts it.
    authority: String,
}

fn encode_segment(key: &str) -> String {
    simple_payloads::encode_any_uri(key).replace('/', "%2F")
}

impl ApiClient {
    pub fn new(addr: &str) -> Result<ApiClient, CliError> {
        let authority = crate::web::local_authority(addr);
        let http = HttpClient::new(
            &format!("http://{authority}"),
            None,
            &TlsMode::default(),
            REQUEST_TIMEOUT,
        )
        .map_err(|e| CliError::Api(e.to_string()))?;
        Ok(ApiClient { http, authority })
    }

    /// The agent's web UI.
    pub fn ui_url(&self) -> String {
        crate::web::ui_url(&self.authority)
    }

    /// Finds the agent of `settings` through `<data_dir>/agent.addr`.
    pub fn for_account(settings: &AccountSettings) -> Result<ApiClient, CliError> {
        let path = settings.data_dir.join("agent.addr");
        let addr = std::fs::read_to_string(&path)
            .map_err(|_| CliError::NoAgent(format!("{} missing", path.display())))?;
        ApiClient::new(addr.trim())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let body = body.map(|b| ("application/json", Bytes::from(b.to_string())));
        let response = self
            .http
            .request(method, path, &[], body)
            .await
            .map_err(|e| CliError::NoAgent(e.to_string()))?;
        let value: Value = serde_json::from_slice(&response.body)
            .map_err(|_| CliError::Api(format!("HTTP {} from the agent", response.status)))?;
        if response.status >= 400 {
            let message = value["error"].as_str().unwrap_or("request failed");
            return Err(CliError::Api(message.to_owned()));
        }
        Ok(value)
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn print_status(v: &Value) {
    let published = &v["published"];
    let mut line = format!("{}: {}", text(&v["account"]), text(&published["status"]));
    if let Some(note) = published["note"].as_str() {
        line.push_str(&format!(" \u{2014} {note}"));
    }
    if published["idle"].as_bool() == Some(true) {
        line.push_str(" (idle)");
    }
    println!("{line}");
    let sip = &v["sip"];
    let registration = if sip["registered"].as_bool() == Some(true) {
        format!("registered ({} list)", text(&sip["list_mode"]))
    } else {
        "not registered".to_owned()
    };
    println!("  SIP: {registration}");
    if let Some(e) = sip["error"].as_str() {
        println!("  SIP error: {e}");
    }
    if let Some(e) = v["xcap"]["error"].as_str() {
        println!("  XCAP error: {e}");
    }
    if let Some(note) = v["offline_note"].as_str() {
        println!("  offline note: {note}");
    }
    if let Some(history) = v["history"].as_array().filter(|h| !h.is_empty()) {
        println!("  recent:");
        for entry in history {
            println!(
                "    {:<10} {}",
                text(&entry["status"]),
                text(&entry["note"])
            );
        }
    }
}

fn print_contacts(v: &Value) {
    for c in v.as_array().into_iter().flatten() {
        let a = &c["availability"];
        let mut state = text(&a["state"]).to_owned();
        if a["pending"].as_bool() == Some(true) {
            state.push_str(" (pending authorization)");
        }
        let second = a["note"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| text(&c["uris"][0]["uri"]).to_owned());
        println!("{:<24} {:<12} {second}", text(&c["name"]), state);
    }
}

fn print_info(v: &Value) {
    println!("{} <{}>", text(&v["name"]), text(&v["uris"][0]["uri"]));
    let a = &v["availability"];
    println!("  state: {}  note: {}", text(&a["state"]), text(&a["note"]));
    if let Some(icon) = a["icon"].as_str() {
        println!("  icon: {icon}");
    }
    for r in v["resources"].as_array().into_iter().flatten() {
        println!("  resource {} ({})", text(&r["uri"]), text(&r["state"]));
        for d in r["documents"].as_array().into_iter().flatten() {
            for t in d["tuples"].as_array().into_iter().flatten() {
                println!(
                    "    tuple {}: {} {}",
                    text(&t["id"]),
                    t["extended"]
                        .as_str()
                        .unwrap_or(if t["open"] == json!(true) {
                            "open"
                        } else {
                            "closed"
                        }),
                    t["notes"][0].as_str().unwrap_or("")
                );
                if let Some(contact) = t["contact"].as_str() {
                    println!("      contact: {contact}");
                }
                let info = &t["device_info"];
                if !info.is_null() {
                    println!(
                        "      device: {} on {}",
                        text(&info["user_agent"]),
                        text(&info["hostname"])
                    );
                }
                if let Some(caps) = t["capabilities"].as_array().filter(|c| !c.is_empty()) {
                    let caps: Vec<&str> = caps.iter().map(text).collect();
                    println!("      media: {}", caps.join(", "));
                }
            }
            for p in d["persons"].as_array().into_iter().flatten() {
                let activities: Vec<&str> = p["activities"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                println!("    person {}: {}", text(&p["id"]), activities.join(", "));
            }
        }
    }
}

fn print_event(e: &Value) {
    let data = &e["data"];
    match text(&e["kind"]) {
        "contact" => {
            let pending = if data["pending"].as_bool() == Some(true) {
                " (pending authorization)"
            } else {
                ""
            };
            println!(
                "{} is {}{pending}{}",
                text(&data["name"]),
                text(&data["state"]),
                data["note"]
                    .as_str()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            )
        }
        kind => println!("{kind}: {data}"),
    }
}

fn print_rows(v: &Value, fields: &[&str]) {
    for row in v.as_array().into_iter().flatten() {
        let cells: Vec<String> = fields
            .iter()
            .map(|f| match &row[*f] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect();
        println!("{}", cells.join("  "));
    }
}

/// Runs one client command against the agent.
pub async fn run(cli: &Cli, client: &ApiClient) -> Result<(), CliError> {
    let (value, print): (Value, fn(&Value)) = match &cli.command {
        Command::Agent => unreachable!("handled by main"),
        Command::Status { state, note } => {
            let value = if state.is_some() || note.is_some() {
                let body = json!({ "status": state, "note": note });
                client.call(Method::PUT, "/status", Some(body)).await?
            } else {
                client.get("/status").await?
            };
            (value, print_status)
        }
        Command::Call { what } => {
            let body = json!({ "active": what == "start" });
            (
                client.call(Method::POST, "/call", Some(body)).await?,
                print_status,
            )
        }
        Command::Idle { seconds } => {
            let body = json!({ "seconds": seconds });
            (
                client.call(Method::POST, "/idle", Some(body)).await?,
                print_status,
            )
        }
        Command::Contacts(command) => contacts(client, command).await?,
        Command::Groups { command } => match command {
            None | Some(GroupsCommand::List) => (client.get("/groups").await?, |v: &Value| {
                for g in v.as_array().into_iter().flatten() {
                    let members: Vec<&str> = g["contacts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(text)
                        .collect();
                    println!("{}: {}", text(&g["name"]), members.join(", "));
                }
            }),
            Some(GroupsCommand::Add { name }) => (
                client
                    .call(Method::POST, "/groups", Some(json!({ "name": name })))
                    .await?,
                |v: &Value| println!("added group {}", text(&v["name"])),
            ),
            Some(GroupsCommand::Remove { group }) => (
                client
                    .call(
                        Method::DELETE,
                        &format!("/groups/{}", encode_segment(group)),
                        None,
                    )
                    .await?,
                |_: &Value| println!("removed"),
            ),
        },
        Command::Requests(command) => match command {
            RequestsCommand::List => (client.get("/requests").await?, |v: &Value| {
                print_rows(v, &["uri", "status"])
            }),
            RequestsCommand::Accept { uri, name, into } => (
                client
                    .call(
                        Method::POST,
                        "/requests/accept",
                        Some(json!({ "uri": uri, "name": name, "into": into })),
                    )
                    .await?,
                |v: &Value| println!("accepted: {} is a contact", text(&v["name"])),
            ),
            RequestsCommand::Block { uri } => (
                client
                    .call(Method::POST, "/requests/block", Some(json!({ "uri": uri })))
                    .await?,
                |v: &Value| println!("blocked {}", text(&v["blocked"])),
            ),
        },
        Command::Blocked => (client.get("/blocked").await?, |v: &Value| {
            print_rows(v, &["uri", "contact"])
        }),
        Command::Watchers => (client.get("/watchers").await?, |v: &Value| {
            print_rows(v, &["uri", "status"])
        }),
        Command::Info { contact } => (
            client
                .get(&format!("/contacts/{}/info", encode_segment(contact)))
                .await?,
            print_info,
        ),
        Command::Watch => return watch(cli, client).await,
        Command::OfflineNote { note, clear } => {
            let value = if note.is_none() && !clear {
                client.get("/status").await?
            } else {
                let body = json!({ "note": note });
                client
                    .call(Method::PUT, "/offline-note", Some(body))
                    .await?
            };
            (value, |v: &Value| {
                println!(
                    "offline note: {}",
                    v["offline_note"].as_str().unwrap_or("(not set)")
                )
            })
        }
        Command::Avatar { file, remove } => {
            let body = match (file, remove) {
                (Some(path), _) => avatar_body(path)?,
                (None, true) => json!({ "png": null }),
                (None, false) => return Err(CliError::Input("give a file or --remove".into())),
            };
            (
                client.call(Method::PUT, "/avatar", Some(body)).await?,
                |v: &Value| println!("avatar: {}", v["avatar"].as_str().unwrap_or("none")),
            )
        }
        Command::Ui => {
            // Only a running agent serves the page: its status proves it is there.
            client.get("/status").await?;
            (json!({ "url": client.ui_url() }), |v: &Value| {
                println!("{}", text(&v["url"]))
            })
        }
    };
    if cli.json {
        println!("{value:#}");
    } else {
        print(&value);
    }
    Ok(())
}

async fn contacts(
    client: &ApiClient,
    command: &ContactsCommand,
) -> Result<(Value, fn(&Value)), CliError> {
    let one = |v: &Value| println!("{} <{}>", text(&v["name"]), text(&v["uris"][0]["uri"]));
    Ok(match command {
        ContactsCommand::List => (client.get("/contacts").await?, print_contacts),
        ContactsCommand::Add { uri, name, group } => (
            client
                .call(
                    Method::POST,
                    "/contacts",
                    Some(json!({ "uri": uri, "name": name, "group": group })),
                )
                .await?,
            one,
        ),
        ContactsCommand::Remove { contact } => (
            client
                .call(Method::DELETE, &format!("/contacts/{}", encode_segment(contact)), None)
                .await?,
            |_: &Value| println!("removed"),
        ),
        ContactsCommand::Edit {
            contact,
            name,
            add_uri,
            remove_uri,
            presence,
        } => (
            client
                .call(
                    Method::PATCH,
                    &format!("/contacts/{}", encode_segment(contact)),
                    Some(json!({
                        "name": name, "add_uri": add_uri, "remove_uri": remove_uri, "presence": presence
                    })),
                )
                .await?,
            one,
        ),
        ContactsCommand::Move { contact, group } => (
            client
                .call(
                    Method::POST,
                    &format!("/contacts/{}/move", encode_segment(contact)),
                    Some(json!({ "group": group })),
                )
                .await?,
            one,
        ),
    })
}

fn avatar_body(path: &PathBuf) -> Result<Value, CliError> {
    let input = |m: String| CliError::Input(format!("{}: {m}", path.display()));
    let size = std::fs::metadata(path)
        .map_err(|e| input(e.to_string()))?
        .len();
    if size > MAX_AVATAR_BYTES {
        return Err(input(format!("larger than {MAX_AVATAR_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| input(e.to_string()))?;
    Ok(json!({ "png": base64::engine::general_purpose::STANDARD.encode(bytes) }))
}

async fn watch(cli: &Cli, client: &ApiClient) -> Result<(), CliError> {
    let mut since = client.get("/events?wait=0").await?["next"]
        .as_u64()
        .unwrap_or(0);
    loop {
        let reply = client.get(&format!("/events?since={since}")).await?;
        for event in reply["events"].as_array().into_iter().flatten() {
            if cli.json {
                println!("{event}");
            } else {
                print_event(event);
            }
        }
        since = reply["next"].as_u64().unwrap_or(since);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_help() {
        use clap::CommandFactory;
        let command = Cli::command();
        command.clone().debug_assert();
        for sub in command.get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no help", sub.get_name());
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            encode_segment("sip:bob@example.com"),
            "sip%3Abob%40example.com"
        );
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
