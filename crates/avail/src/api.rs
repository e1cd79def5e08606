//! The agent's local HTTP API on 127.0.0.1 (issue 7 item 7), JSON in and out; the CLI and the
//! web UI ([`crate::web`], served on the same address) use it. Address-book edits become XCAP
//! journal operations (blink-compat §2.2, §4.4: accept = contact with presence `allow` +
//! `subscribe`, block = presence `block`) and the request returns once the sync that writes
//! them finishes. `GET /events?since=N` is a long poll (up to 25 s) over the agent's event
//! log.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /status`, `PUT /status` | own state, note, history; set state and note |
//! | `POST /call`, `POST /idle` | a call started/ended; seconds without user input |
//! | `GET /contacts`, `POST /contacts` | contacts with availability; add one |
//! | `PATCH /contacts/{c}`, `DELETE /contacts/{c}`, `POST /contacts/{c}/move` | edit, remove, move |
//! | `GET /contacts/{c}/info` | every PIDF element read for the contact (§5.5) |
//! | `GET /contacts/{c}/avatar` | the contact's icon, fetched without credentials and cached (§5.3) |
//! | `GET /groups`, `POST /groups`, `DELETE /groups/{g}` | groups |
//! | `GET /requests`, `POST /requests/accept`, `POST /requests/block` | contact requests (§4.4) |
//! | `GET /blocked`, `GET /watchers` | blocked addresses; who sees the user's availability |
//! | `PUT /offline-note`, `PUT /avatar` | pidf-manipulation note; pres-content icon |
//! | `GET /events?since=N` | long poll |
//! | `GET /`, `GET /app.js`, `GET /style.css` | the web UI |
//!
//! Every route, UI included, answers only requests addressed to a loopback name of the agent
//! and refuses state changes from other sites' pages ([`crate::web::loopback_only`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use avail_client::avatar;
use avail_client::ids::new_id;
use avail_client::presence::Status;
use avail_client::resource_lists::{
    AddressBook, Contact, ContactUpdate, ContactUri, Group, Handling, Policy,
};
use avail_client::roster::{contact_availability, strip_scheme};
use avail_client::Operation;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::agent::{Shared, SipCommand};
use crate::web;

/// Longest wait of one `GET /events`.
const MAX_POLL: Duration = Duration::from_secs(25);
/// Largest request body (a picture in base64 inside JSON is the largest; it is scaled here).
const MAX_BODY: usize = 8 * 1024 * 1024;

type Api = State<Arc<Shared>>;

/// An error answer: `{"error": message}`.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found(what: &str, key: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no {what} {key:?}"))
}

type Reply = Result<Json<Value>, ApiError>;

/// The API and the web UI of the agent listening on `api_addr`.
pub fn router(shared: Arc<Shared>, api_addr: SocketAddr) -> Router {
    let api = Router::new()
        .route("/status", get(status).put(set_status))
        .route("/call", post(call))
        .route("/idle", post(idle))
        .route("/contacts", get(contacts).post(add_contact))
        .route(
            "/contacts/{key}",
            get(contact_info).patch(edit_contact).delete(remove_contact),
        )
        .route("/contacts/{key}/move", post(move_contact))
        .route("/contacts/{key}/info", get(contact_info))
        .route("/contacts/{key}/avatar", get(contact_avatar))
        .route("/groups", get(groups).post(add_group))
        .route("/groups/{key}", axum::routing::delete(remove_group))
        .route("/requests", get(requests))
        .route("/requests/accept", post(accept_request))
        .route("/requests/block", post(block_request))
        .route("/blocked", get(blocked))
        .route("/watchers", get(watchers))
        .route("/offline-note", put(offline_note))
        .route("/avatar", put(avatar))
        .route("/events", get(events))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared);
    web::loopback_only(api.merge(web::pages()), api_addr)
}

fn status_json(shared: &Shared) -> Value {
    let state = shared.state();
    let effective = state.presence.effective();
    let chosen = state.presence.chosen();
    json!({
        "account": shared.settings.aor(),
        "status": chosen.status,
        "note": chosen.note,
        "published": { "status": effective.status, "note": effective.note, "idle": effective.idle_since.is_some() },
        "in_call": state.presence.in_call(),
        "history": state.presence.history().collect::<Vec<_>>(),
        "sip": state.sip,
        "xcap": state.xcap,
        "offline_note": state.snapshot.offline_note,
        "avatar": state.snapshot.icon.as_ref().map(|i| i.mime_type.clone()),
    })
}

async fn status(State(shared): Api) -> Json<Value> {
    Json(status_json(&shared))
}

#[derive(Deserialize)]
struct SetStatus {
    status: Option<String>,
    /// Absent: keep the note; empty: clear it.
    note: Option<String>,
}

async fn set_status(State(shared): Api, Json(body): Json<SetStatus>) -> Reply {
    {
        let mut state = shared.state();
        let current = state.presence.chosen().clone();
        let status = match body.status.as_deref() {
            Some(word) => Status::parse(word).ok_or_else(|| {
                bad(format!(
                    "unknown state {word:?} (available, away, busy or invisible)"
                ))
            })?,
            None => current.status,
        };
        let note = body.note.or(current.note);
        state
            .presence
            .set(status, note, SystemTime::now())
            .map_err(|e| bad(e.to_string()))?;
        shared.save_presence(&state.presence.saved());
    }
    shared.events.push("status", json!({ "reason": "set" }));
    let _ = shared.sip.send(SipCommand::Republish);
    Ok(Json(status_json(&shared)))
}

#[derive(Deserialize)]
struct Call {
    active: bool,
}

async fn call(State(shared): Api, Json(body): Json<Call>) -> Json<Value> {
    let changed = shared
        .state()
        .presence
        .set_in_call(body.active, SystemTime::now());
    if changed {
        shared
            .events
            .push("status", json!({ "in_call": body.active }));
        let _ = shared.sip.send(SipCommand::Republish);
    }
    Json(status_json(&shared))
}

#[derive(Deserialize)]
struct Idle {
    seconds: u64,
}

async fn idle(State(shared): Api, Json(body): Json<Idle>) -> Json<Value> {
    shared.report_idle(Duration::from_secs(body.seconds));
    Json(status_json(&shared))
}

/// A contact by id, by name (ignoring case) or by one of its URIs.
fn find_contact<'a>(book: &'a AddressBook, key: &str) -> Option<&'a Contact> {
    book.contact(key)
        .or_else(|| {
            book.contacts
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(key))
        })
        .or_else(|| {
            book.contacts.iter().find(|c| {
                c.uris
                    .iter()
                    .any(|u| strip_scheme(&u.uri) == strip_scheme(key))
            })
        })
}

fn find_group<'a>(book: &'a AddressBook, key: &str) -> Option<&'a Group> {
    book.group(key).or_else(|| {
        book.groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(key))
    })
}

fn contact_json(shared: &Shared, contact: &Contact) -> Value {
    let state = shared.state();
    let groups: Vec<&str> = state
        .snapshot
        .address_book
        .groups
        .iter()
        .filter(|g| g.contacts.contains(&contact.id))
        .map(|g| g.name.as_str())
        .collect();
    json!({
        "id": contact.id,
        "name": contact.name,
        "uris": contact.uris.iter().map(|u| json!({ "id": u.id, "uri": u.uri, "type": u.uri_type })).collect::<Vec<_>>(),
        "groups": groups,
        "presence_policy": contact.presence.policy,
        "subscribe": contact.presence.subscribe,
        "availability": contact_availability(contact, &state.buddies),
    })
}

async fn contacts(State(shared): Api) -> Json<Value> {
    let book = shared.state().snapshot.address_book.clone();
    Json(Value::Array(
        book.contacts
            .iter()
            .map(|c| contact_json(&shared, c))
            .collect(),
    ))
}

async fn apply(shared: &Shared, ops: Vec<Operation>) -> Result<(), ApiError> {
    shared.apply(ops).await.map_err(|e| {
        ApiError(
            StatusCode::BAD_GATEWAY,
            format!("saved locally, not yet on the XCAP server: {e}"),
        )
    })
}

/// Operations adding `contact_id` to the group named `group` (created when missing).
fn group_ops(book: &AddressBook, group: &str, contact_id: &str) -> Vec<Operation> {
    match find_group(book, group) {
        Some(g) => vec![Operation::AddGroupMember {
            group_id: g.id.clone(),
            contact_id: contact_id.to_owned(),
        }],
        None => {
            let id = new_id();
            vec![
                Operation::AddGroup {
                    group: Group {
                        id: id.clone(),
                        name: group.to_owned(),
                        contacts: Vec::new(),
                        attributes: Vec::new(),
                    },
                },
                Operation::AddGroupMember {
                    group_id: id,
                    contact_id: contact_id.to_owned(),
                },
            ]
        }
    }
}

const SHOWN: Handling = Handling {
    policy: Policy::Allow,
    subscribe: true,
};

fn new_contact(name: Option<String>, uri: &str) -> Contact {
    let uri_id = new_id();
    Contact {
        id: new_id(),
        name: name.unwrap_or_else(|| strip_scheme(uri).to_owned()),
        uris: vec![ContactUri {
            id: uri_id.clone(),
            uri: uri.to_owned(),
            uri_type: Some("SIP".into()),
            attributes: Vec::new(),
        }],
        default_uri: Some(uri_id),
        dialog: Handling::default(),
        // Blink Qt ticks "presence" for new contacts: allow and subscribe (§1.2).
        presence: SHOWN,
        attributes: Vec::new(),
    }
}

fn check_uri(uri: &str) -> Result<(), ApiError> {
    if uri.is_empty() || uri.len() > 512 || uri.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(format!("invalid address {uri:?}")));
    }
    Ok(())
}

#[derive(Deserialize)]
struct AddContact {
    uri: String,
    name: Option<String>,
    group: Option<String>,
}

async fn add_contact(State(shared): Api, Json(body): Json<AddContact>) -> Reply {
    check_uri(&body.uri)?;
    let book = shared.state().snapshot.address_book.clone();
    if let Some(existing) = find_contact(&book, &body.uri) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("{} is already the contact {:?}", body.uri, existing.name),
        ));
    }
    let contact = new_contact(body.name, &body.uri);
    let id = contact.id.clone();
    let mut ops = vec![Operation::AddContact { contact }];
    if let Some(group) = &body.group {
        ops.extend(group_ops(&book, group, &id));
    }
    apply(&shared, ops).await?;
    contact_reply(&shared, &id)
}

fn contact_reply(shared: &Shared, id: &str) -> Reply {
    let book = shared.state().snapshot.address_book.clone();
    let contact = book
        .contact(id)
        .ok_or_else(|| not_found("contact after sync", id))?;
    Ok(Json(contact_json(shared, contact)))
}

#[derive(Deserialize)]
struct EditContact {
    name: Option<String>,
    add_uri: Option<String>,
    remove_uri: Option<String>,
    /// `allow` (show my availability and subscribe), `block`, or `default`.
    presence: Option<Policy>,
}

async fn edit_contact(
    State(shared): Api,
    Path(key): Path<String>,
    Json(body): Json<EditContact>,
) -> Reply {
    let book = shared.state().snapshot.address_book.clone();
    let contact = find_contact(&book, &key).ok_or_else(|| not_found("contact", &key))?;
    let mut ops = Vec::new();
    if body.name.is_some() || body.presence.is_some() {
        ops.push(Operation::UpdateContact {
            id: contact.id.clone(),
            update: ContactUpdate {
                name: body.name,
                presence: body.presence.map(|policy| Handling {
                    policy,
                    subscribe: policy == Policy::Allow,
                }),
                ..ContactUpdate::default()
            },
        });
    }
    if let Some(uri) = body.add_uri {
        check_uri(&uri)?;
        ops.push(Operation::AddUri {
            contact_id: contact.id.clone(),
            uri: ContactUri {
                id: new_id(),
                uri,
                uri_type: Some("SIP".into()),
                attributes: Vec::new(),
            },
        });
    }
    if let Some(uri) = body.remove_uri {
        let found = contact
            .uris
            .iter()
            .find(|u| strip_scheme(&u.uri) == strip_scheme(&uri) || u.id == uri)
            .ok_or_else(|| not_found("address of this contact", &uri))?;
        ops.push(Operation::RemoveUri {
            contact_id: contact.id.clone(),
            uri_id: found.id.clone(),
        });
    }
    if ops.is_empty() {
        return Err(bad("nothing to change"));
    }
    apply(&shared, ops).await?;
    contact_reply(&shared, &contact.id)
}

async fn remove_contact(State(shared): Api, Path(key): Path<String>) -> Reply {
    let book = shared.state().snapshot.address_book.clone();
    let contact = find_contact(&book, &key).ok_or_else(|| not_found("contact", &key))?;
    apply(
        &shared,
        vec![Operation::RemoveContact {
            id: contact.id.clone(),
        }],
    )
    .await?;
    Ok(Json(json!({ "removed": contact.id })))
}

#[derive(Deserialize)]
struct Move {
    /// None: out of every group.
    group: Option<String>,
}

async fn move_contact(
    State(shared): Api,
    Path(key): Path<String>,
    Json(body): Json<Move>,
) -> Reply {
    let book = shared.state().snapshot.address_book.clone();
    let contact = find_contact(&book, &key).ok_or_else(|| not_found("contact", &key))?;
    let mut ops: Vec<Operation> = book
        .groups
        .iter()
        .filter(|g| g.contacts.contains(&contact.id))
        .map(|g| Operation::RemoveGroupMember {
            group_id: g.id.clone(),
            contact_id: contact.id.clone(),
        })
        .collect();
    if let Some(group) = &body.group {
        ops.extend(group_ops(&book, group, &contact.id));
    }
    apply(&shared, ops).await?;
    contact_reply(&shared, &contact.id)
}

async fn contact_info(State(shared): Api, Path(key): Path<String>) -> Reply {
    let book = shared.state().snapshot.address_book.clone();
    let contact = find_contact(&book, &key).ok_or_else(|| not_found("contact", &key))?;
    let mut info = contact_json(&shared, contact);
    let state = shared.state();
    let resources: Vec<Value> = contact
        .uris
        .iter()
        .flat_map(|u| state.buddies.matching(&u.uri))
        .map(|r| json!(r))
        .collect();
    info["resources"] = Value::Array(resources);
    Ok(Json(info))
}

async fn contact_avatar(State(shared): Api, Path(key): Path<String>) -> Reply {
    let url = {
        let state = shared.state();
        let contact = find_contact(&state.snapshot.address_book, &key)
            .ok_or_else(|| not_found("contact", &key))?;
        contact_availability(contact, &state.buddies)
            .icon
            .ok_or_else(|| not_found("published icon of", &key))?
    };
    let icon = shared
        .icons
        .lock()
        .await
        .get(&url, &shared.settings.tls)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(Json(
        json!({ "url": url, "mime_type": icon.mime_type, "base64": icon.base64 }),
    ))
}

async fn groups(State(shared): Api) -> Json<Value> {
    let book = shared.state().snapshot.address_book.clone();
    Json(Value::Array(
        book.groups
            .iter()
            .map(|g| {
                let members: Vec<&str> = g
                    .contacts
                    .iter()
                    .filter_map(|id| book.contact(id))
                    .map(|c| c.name.as_str())
                    .collect();
                json!({ "id": g.id, "name": g.name, "contacts": members })
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
struct AddGroup {
    name: String,
}

async fn add_group(State(shared): Api, Json(body): Json<AddGroup>) -> Reply {
    if body.name.trim().is_empty() {
        return Err(bad("a group needs a name"));
    }
    let id = new_id();
    apply(
        &shared,
        vec![Operation::AddGroup {
            group: Group {
                id: id.clone(),
                name: body.name.clone(),
                contacts: Vec::new(),
                attributes: Vec::new(),
            },
        }],
    )
    .await?;
    Ok(Json(json!({ "id": id, "name": body.name })))
}

async fn remove_group(State(shared): Api, Path(key): Path<String>) -> Reply {
    let book = shared.state().snapshot.address_book.clone();
    let group = find_group(&book, &key).ok_or_else(|| not_found("group", &key))?;
    apply(
        &shared,
        vec![Operation::RemoveGroup {
            id: group.id.clone(),
        }],
    )
    .await?;
    Ok(Json(json!({ "removed": group.id })))
}

async fn requests(State(shared): Api) -> Json<Value> {
    let state = shared.state();
    Json(json!(state.watchers.requests(&state.snapshot.address_book)))
}

#[derive(Deserialize)]
struct Accept {
    uri: String,
    name: Option<String>,
    /// Merge the address into this existing contact instead of creating one.
    into: Option<String>,
}

/// Accept (§4.4): a contact with presence allow + subscribe, new or updated.
async fn accept_request(State(shared): Api, Json(body): Json<Accept>) -> Reply {
    check_uri(&body.uri)?;
    let uri = strip_scheme(&body.uri).to_owned();
    let book = shared.state().snapshot.address_book.clone();
    let target = match &body.into {
        Some(key) => Some(find_contact(&book, key).ok_or_else(|| not_found("contact", key))?),
        None => find_contact(&book, &uri),
    };
    let (id, ops) = match target {
        Some(contact) => {
            let mut ops = Vec::new();
            if !contact.uris.iter().any(|u| strip_scheme(&u.uri) == uri) {
                ops.push(Operation::AddUri {
                    contact_id: contact.id.clone(),
                    uri: ContactUri {
                        id: new_id(),
                        uri: uri.clone(),
                        uri_type: Some("SIP".into()),
                        attributes: Vec::new(),
                    },
                });
            }
            ops.push(Operation::UpdateContact {
                id: contact.id.clone(),
                update: ContactUpdate {
                    presence: Some(SHOWN),
                    ..ContactUpdate::default()
                },
            });
            (contact.id.clone(), ops)
        }
        None => {
            let contact = new_contact(body.name, &uri);
            (contact.id.clone(), vec![Operation::AddContact { contact }])
        }
    };
    apply(&shared, ops).await?;
    contact_reply(&shared, &id)
}

#[derive(Deserialize)]
struct Block {
    uri: String,
}

/// Block (§4.4): presence `block` on the contact owning the address, else a policy-element.
async fn block_request(State(shared): Api, Json(body): Json<Block>) -> Reply {
    check_uri(&body.uri)?;
    let uri = strip_scheme(&body.uri).to_owned();
    let book = shared.state().snapshot.address_book.clone();
    let owner_uri = find_contact(&book, &uri)
        .and_then(|c| c.uris.iter().find(|u| strip_scheme(&u.uri) == uri))
        .map_or(uri.clone(), |u| u.uri.clone());
    apply(
        &shared,
        vec![Operation::SetAddressPolicy {
            id: new_id(),
            uri: owner_uri,
            name: String::new(),
            policy: Policy::Block,
        }],
    )
    .await?;
    Ok(Json(json!({ "blocked": uri })))
}

async fn blocked(State(shared): Api) -> Json<Value> {
    let book = shared.state().snapshot.address_book.clone();
    let contacts = book
        .contacts
        .iter()
        .filter(|c| c.presence.policy == Policy::Block)
        .flat_map(|c| {
            c.uris
                .iter()
                .map(move |u| json!({ "uri": u.uri, "contact": c.name }))
        });
    let others = book
        .policies
        .iter()
        .filter(|p| p.presence.policy == Policy::Block)
        .map(|p| json!({ "uri": p.uri, "contact": null }));
    Json(Value::Array(contacts.chain(others).collect()))
}

async fn watchers(State(shared): Api) -> Json<Value> {
    Json(json!(shared.state().watchers.active()))
}

#[derive(Deserialize)]
struct OfflineNote {
    note: Option<String>,
}

async fn offline_note(State(shared): Api, Json(body): Json<OfflineNote>) -> Reply {
    let note = body.note.filter(|n| !n.trim().is_empty());
    apply(&shared, vec![Operation::SetOfflineNote { note }]).await?;
    Ok(Json(status_json(&shared)))
}

#[derive(Deserialize)]
struct Avatar {
    /// Base64 of a PNG, JPEG or GIF file; None removes the avatar.
    png: Option<String>,
}

/// The picture is turned by its EXIF orientation (JPEG), scaled to fit 256×256 and uploaded
/// as PNG (blink-compat §3.4).
async fn avatar(State(shared): Api, Json(body): Json<Avatar>) -> Reply {
    let icon = match body.png {
        Some(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| bad(format!("avatar is not base64: {e}")))?;
            Some(avatar::prepare(&bytes).map_err(|e| bad(e.to_string()))?)
        }
        None => None,
    };
    apply(&shared, vec![Operation::SetIcon { icon }]).await?;
    Ok(Json(status_json(&shared)))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
    /// Seconds to wait for an event (at most 25).
    wait: Option<u64>,
}

async fn events(State(shared): Api, Query(query): Query<Since>) -> Json<Value> {
    let wait = query
        .wait
        .map_or(MAX_POLL, Duration::from_secs)
        .min(MAX_POLL);
    let (events, next) = shared.events.since(query.since, wait).await;
    Json(json!({ "next": next, "events": events }))
}
