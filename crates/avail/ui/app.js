// The Avail agent's web UI: own availability, contacts by group, contact requests, watchers
// and blocked addresses, kept current by long-polling the agent's event log.
//
// Every request to the agent goes through one function, api(method, path, body), called with
// literal methods and paths, so the call sites are easy to find: the agent's tests check that
// each path exists with its method. Text that came over the network
// (names, notes, addresses, errors) only ever reaches the page as text nodes or textContent:
// other people write those notes and names.

const STATES = ["available", "away", "busy", "invisible"];
/** Contact states with their words; "none" means the contact publishes nothing. */
const CONTACT_STATE_WORDS = {
  available: "available",
  away: "away",
  busy: "busy",
  offline: "offline",
  none: "no information",
};
/** Mirrors the CLI's limit: the agent refuses bodies above 8 MiB, base64 included. */
const MAX_AVATAR_BYTES = 6 * 1024 * 1024;
/**
 * Seconds one long poll may wait for an event: the agent's longest (a stopping agent ends
 * the poll at once, so the wait costs nothing there).
 */
const POLL_WAIT_SECONDS = 25;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30000;

/** The agent answered with an error: its own message, to show as it is. */
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The agent did not answer at all. */
class Unreachable extends Error {}

/** The one door to the agent's JSON API. */
async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  let text;
  try {
    response = await fetch(path, init);
    text = await response.text();
  } catch (error) {
    setReachable(false);
    throw new Unreachable(`the agent is not reachable (${error.message})`);
  }
  setReachable(true);
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message =
      data && typeof data.error === "string"
        ? data.error
        : text.trim() || `HTTP ${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

/** A path segment: contact and group keys may hold any character. */
const segment = (key) => encodeURIComponent(key);

// ---- small DOM helpers -------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

/** A button running `onClick` as a user action; `content` is a string or a list of nodes. */
function button(content, onClick, attributes = {}) {
  const node = el("button", { type: "button", ...attributes }, ...[content].flat());
  node.addEventListener("click", () => run(node, () => onClick(node)));
  return node;
}

function dotClass(state) {
  const known = state in CONTACT_STATE_WORDS || STATES.includes(state);
  return `dot state-${known ? state : "none"}`;
}

/** A coloured dot beside a state's word: the colour is never the only cue. */
function stateDot(state) {
  return el("span", { class: dotClass(state), "aria-hidden": "true" });
}

/** A link only for http(s) addresses: a published `javascript:` URL must not become one. */
function safeLink(url, label) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") {
      return el("a", { href: parsed.href, rel: "noopener noreferrer", target: "_blank" }, label);
    }
  } catch {
    // Not a URL: shown as text below.
  }
  return document.createTextNode(url);
}

/** What each container was last rendered from. */
const rendered = new WeakMap();

/**
 * Renders `container` anew from `data` unless it already shows exactly that. Controls marked
 * with the same data-focus key keep keyboard focus and what the user typed, so live updates
 * neither throw the user back to the top of the page nor wipe a half-typed name.
 */
function rerender(container, data, build) {
  const signature = JSON.stringify(data);
  if (rendered.get(container) === signature) return;
  rendered.set(container, signature);
  const keyed = (root) => new Map([...root.querySelectorAll("[data-focus]")].map((n) => [n.dataset.focus, n]));
  const before = keyed(container);
  const focused = container.contains(document.activeElement) ? document.activeElement.dataset.focus : undefined;
  container.replaceChildren(...build());
  for (const [key, node] of keyed(container)) {
    const old = before.get(key);
    if (old && "value" in old && node.tagName === old.tagName) node.value = old.value;
    if (key === focused) node.focus();
  }
}

// ---- messages and progress ---------------------------------------------------------------

function showError(error) {
  $("message-text").textContent =
    error instanceof ApiError
      ? `The agent refused: ${error.message}`
      : error instanceof Unreachable
        ? `Not done: ${error.message}`
        : `Something went wrong: ${error.message}`;
  $("message").hidden = false;
}

function setReachable(reachable) {
  $("unreachable").hidden = reachable;
  document.body.classList.toggle("unreachable", !reachable);
}

/** Controls whose action is under way. */
const busy = new WeakSet();

/**
 * Runs a user action, once at a time per control (XCAP edits wait for the server), and shows
 * a failure, never drops it. The control stays enabled: disabling it would take the keyboard
 * focus away from it.
 */
async function run(control, action) {
  if (busy.has(control)) return;
  busy.add(control);
  control.setAttribute("aria-busy", "true");
  $("progress").textContent = "Working…";
  try {
    await action();
    $("progress").textContent = "Done.";
    $("message").hidden = true;
  } catch (error) {
    $("progress").textContent = "";
    showError(error);
  } finally {
    busy.delete(control);
    control.removeAttribute("aria-busy");
  }
}

/** A form handled by `action(form)`, with its inputs marked dirty once the user types. */
function onSubmit(form, action) {
  form.addEventListener("input", () => {
    form.dataset.dirty = "true";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const submit = form.querySelector("[type=submit]");
    run(submit, async () => {
      await action(form);
      delete form.dataset.dirty;
    });
  });
}

/** Fills a form field from the agent unless the user is editing that form. */
function fill(input, value) {
  if (!input.form?.dataset.dirty) input.value = value ?? "";
}

// ---- the view ----------------------------------------------------------------------------

const view = {
  status: null,
  contacts: [],
  groups: [],
  /** Contact id of the open details dialog. */
  openContact: null,
  /** data-focus key of the button that opened it, to return to on close. */
  openedFrom: null,
};

/** Contact id → { icon URL, data URL once fetched } of avatars asked for. */
const avatars = new Map();

function renderStatus() {
  const s = view.status;
  $("account").textContent = s.account;
  document.title = `Avail: ${s.account}`;

  const sip = s.sip;
  const sipWords = sip.registered
    ? `registered (${sip.list_mode === "rls" ? "buddy list from the server" : "one subscription per contact"})`
    : sip.connected
      ? "connected, not registered"
      : "not connected";
  $("sip-state").textContent = sipWords;
  $("sip-dot").className = `dot ${sip.registered ? "ok" : "bad"}`;
  $("sip-error").hidden = !sip.error;
  $("sip-error").textContent = sip.error ? `SIP: ${sip.error}` : "";

  $("xcap-state").textContent = s.xcap.ready ? "ready" : "not ready";
  $("xcap-dot").className = `dot ${s.xcap.ready ? "ok" : "bad"}`;
  $("xcap-error").hidden = !s.xcap.error;
  $("xcap-error").textContent = s.xcap.error ? `XCAP: ${s.xcap.error}` : "";

  const published = s.published;
  $("published-dot").className = dotClass(published.status);
  const extras = [published.idle && "idle", s.in_call && "in a call"].filter(Boolean);
  $("published-state").textContent =
    published.status + (extras.length ? ` (${extras.join(", ")})` : "");
  $("published-note").textContent = published.note ? `“${published.note}”` : "";

  const form = $("status-form");
  if (!form.dataset.dirty) {
    for (const radio of form.elements.status) radio.checked = radio.value === s.status;
    $("status-note").value = s.note ?? "";
    noteFollowsState();
  }

  rerender($("history"), s.history, () =>
    s.history.length === 0
      ? [el("li", { class: "empty" }, "No notes used yet.")]
      : s.history.map((choice, index) =>
          el(
            "li",
            {},
            button(
              [stateDot(choice.status), `${choice.status}: ${choice.note ?? ""}`],
              () => setStatus(choice.status, choice.note ?? ""),
              {
                "data-focus": `history:${index}`,
                "aria-label": `Use again: ${choice.status}, ${choice.note ?? "no note"}`,
              },
            ),
          ),
        ),
  );

  $("offline-note-current").textContent = s.offline_note
    ? `Now: “${s.offline_note}”`
    : "No offline note set.";
  fill($("offline-note"), s.offline_note);
  $("avatar-state").textContent = s.avatar ? `Avatar set (${s.avatar}).` : "No avatar set.";
  $("avatar-remove").hidden = !s.avatar;
}

/** Qt disables the note for Invisible; the agent drops it anyway. */
function noteFollowsState() {
  $("status-note").disabled = $("status-form").elements.status.value === "invisible";
}

function contactStateWords(availability) {
  const words = CONTACT_STATE_WORDS[availability.state] ?? availability.state;
  return availability.pending ? `${words}, awaiting authorization` : words;
}

/** The avatar's data URL when it is fetched and still the one the contact publishes. */
function avatarSource(contact) {
  const known = avatars.get(contact.id);
  return known?.icon === contact.availability.icon ? known.src : null;
}

function avatarNode(contact, size) {
  const src = avatarSource(contact);
  if (src) return el("img", { class: `avatar ${size}`, src, alt: "" });
  const initial = [...(contact.name || "?")][0].toUpperCase();
  return el("span", { class: `avatar ${size} placeholder`, "aria-hidden": "true" }, initial);
}

function contactItem(contact) {
  const a = contact.availability;
  const address = contact.uris[0]?.uri ?? "";
  return el(
    "li",
    { class: "contact" },
    avatarNode(contact, "small"),
    el(
      "div",
      { class: "who" },
      el("strong", { class: "name" }, contact.name),
      el("span", { class: "state" }, stateDot(a.state), contactStateWords(a)),
      a.note ? el("span", { class: "note" }, a.note) : el("span", { class: "address" }, address),
    ),
    // Keyed by contact alone: after a move to another group the same button gets the focus.
    button("Details", (opener) => openContact(contact.id, opener), {
      "data-focus": `details:${contact.id}`,
      "aria-label": `Details and editing for ${contact.name}`,
    }),
  );
}

function groupSection(title, contacts, group) {
  const heading = el("h3", {}, title, el("span", { class: "count" }, ` (${contacts.length})`));
  const head = el("div", { class: "group-head" }, heading);
  if (group) {
    head.append(
      button("Remove group", () => removeGroup(group), {
        "data-focus": `remove-group:${group.id}`,
        "aria-label": `Remove group ${group.name} (its contacts stay)`,
      }),
    );
  }
  const list =
    contacts.length === 0
      ? el("p", { class: "empty" }, "No contacts in this group.")
      : el("ul", { class: "rows" }, ...contacts.map(contactItem));
  return el("section", { class: "group" }, head, list);
}

function renderContacts() {
  const { contacts, groups } = view;
  const shown = [contacts, groups, contacts.map(avatarSource)];
  rerender($("groups"), shown, () => {
    if (contacts.length === 0 && groups.length === 0) {
      return [el("p", { class: "empty" }, "No contacts yet.")];
    }
    const sections = groups.map((g) =>
      groupSection(
        g.name,
        contacts.filter((c) => c.groups.includes(g.name)),
        g,
      ),
    );
    const loose = contacts.filter((c) => c.groups.length === 0);
    if (loose.length > 0) sections.push(groupSection("Not in a group", loose, null));
    return sections;
  });
  $("group-names").replaceChildren(...groups.map((g) => el("option", { value: g.name })));
}

/**
 * Fetches the icons of contacts that publish one not asked for yet. Each icon is asked for
 * once: a failure is shown, not retried on every refresh, until the contact publishes another.
 */
async function loadAvatars() {
  const wanted = view.contacts.filter(
    (c) => c.availability.icon && avatars.get(c.id)?.icon !== c.availability.icon,
  );
  for (const contact of wanted) avatars.set(contact.id, { icon: contact.availability.icon, src: null });
  for (const contact of wanted) {
    try {
      const icon = await api("GET", `/contacts/${segment(contact.id)}/avatar`);
      if (!String(icon.mime_type).startsWith("image/")) {
        throw new Error(`it is ${icon.mime_type}, not a picture`);
      }
      avatars.set(contact.id, {
        icon: contact.availability.icon,
        src: `data:${icon.mime_type};base64,${icon.base64}`,
      });
      renderContacts();
    } catch (error) {
      showError(new Error(`${contact.name}'s avatar could not be loaded: ${error.message}`));
    }
  }
}

function renderRequests(requests) {
  const contacts = view.contacts;
  rerender($("requests"), [requests, contacts.map((c) => [c.id, c.name])], () =>
    requests.length === 0
      ? [el("li", { class: "empty" }, "No pending requests.")]
      : requests.map((request) => {
          const who = request.display_name || request.uri;
          const nameId = `request-name-${request.id}`;
          const intoId = `request-into-${request.id}`;
          const name = el("input", {
            id: nameId,
            type: "text",
            value: request.display_name ?? "",
            autocomplete: "off",
            "data-focus": `request-name:${request.id}`,
          });
          const into = el(
            "select",
            { id: intoId, "data-focus": `request-into:${request.id}` },
            el("option", { value: "" }, "a new contact"),
            ...contacts.map((c) => el("option", { value: c.id }, `existing: ${c.name}`)),
          );
          return el(
            "li",
            { class: "request" },
            el(
              "div",
              { class: "who" },
              el("strong", {}, who),
              el(
                "span",
                { class: "address" },
                request.display_name ? `${request.uri}, ${request.status}` : request.status,
              ),
            ),
            el("label", { for: nameId }, `Name for ${who}`),
            name,
            el("label", { for: intoId }, "Accept as"),
            into,
            el(
              "div",
              { class: "row" },
              button("Accept", () => acceptRequest(request.uri, name.value, into.value), {
                "data-focus": `accept:${request.id}`,
                "aria-label": `Accept ${who}`,
              }),
              button("Block", () => blockAddress(request.uri), {
                class: "danger",
                "data-focus": `block:${request.id}`,
                "aria-label": `Block ${who}`,
              }),
            ),
          );
        }),
  );
}

function renderWatchers(watchers) {
  rerender($("watchers"), watchers, () =>
    watchers.length === 0
      ? [el("li", { class: "empty" }, "Nobody is watching.")]
      : watchers.map((w) =>
          el("li", {}, el("strong", {}, w.display_name || w.uri), w.display_name ? el("span", { class: "address" }, ` ${w.uri}`) : null),
        ),
  );
}

function renderBlocked(blocked) {
  rerender($("blocked"), blocked, () =>
    blocked.length === 0
      ? [el("li", { class: "empty" }, "Nobody is blocked.")]
      : blocked.map((b) =>
          el("li", {}, el("strong", {}, b.uri), b.contact ? el("span", { class: "address" }, ` (contact ${b.contact})`) : null),
        ),
  );
}

// ---- loading -----------------------------------------------------------------------------

const loaders = {
  async status() {
    view.status = await api("GET", "/status");
    renderStatus();
  },
  async contacts() {
    const [contacts, groups] = await Promise.all([api("GET", "/contacts"), api("GET", "/groups")]);
    view.contacts = contacts;
    view.groups = groups;
    renderContacts();
    // Icons come from other servers, maybe slowly: the rest of the page does not wait.
    loadAvatars().catch(showError);
    if (view.openContact !== null) await showContactDetails(view.openContact);
  },
  async requests() {
    renderRequests(await api("GET", "/requests"));
  },
  async watchers() {
    renderWatchers(await api("GET", "/watchers"));
  },
  async blocked() {
    renderBlocked(await api("GET", "/blocked"));
  },
};

/** What each kind of event (agent.rs, session.rs, api.rs) may have changed. */
const AFFECTED = {
  status: ["status"],
  registration: ["status"],
  xcap: ["status", "contacts", "requests", "blocked"],
  contacts: ["status", "contacts", "requests", "blocked"],
  contact: ["contacts"],
  watchers: ["requests", "watchers"],
};

/** Reloads `parts` (every part by default); each is tried, then the first failure thrown. */
async function reload(parts = Object.keys(loaders)) {
  const wanted = new Set(parts);
  const failures = [];
  const attempt = (part) => loaders[part]().catch((error) => failures.push(error));
  // Requests offer the contacts to merge into, so contacts come first.
  if (wanted.delete("contacts")) await attempt("contacts");
  await Promise.all([...wanted].map(attempt));
  if (failures.length > 0) throw failures[0];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows the agent's event log for ever: a long poll, then a reload of what the events
 * touched. After a failure it waits, doubling the wait up to 30 s; then everything is
 * reloaded and the log followed from its current end, since a restarted agent numbers its
 * events afresh.
 */
async function followEvents() {
  let since = null;
  let retry = RETRY_FIRST_MS;
  for (;;) {
    try {
      if (since === null) {
        since = (await api("GET", "/events?wait=0")).next;
        await reload();
      }
      const reply = await api("GET", `/events?since=${since}&wait=${POLL_WAIT_SECONDS}`);
      since = reply.next;
      retry = RETRY_FIRST_MS;
      const parts = reply.events.flatMap((event) => AFFECTED[event.kind] ?? Object.keys(loaders));
      if (parts.length > 0) await reload(parts);
    } catch (error) {
      if (!(error instanceof Unreachable)) showError(error);
      // Start over once it works again: what failed to load is loaded then.
      since = null;
      await sleep(retry);
      retry = Math.min(retry * 2, RETRY_MAX_MS);
    }
  }
}

// ---- actions -----------------------------------------------------------------------------

async function setStatus(status, note) {
  view.status = await api("PUT", "/status", { status, note });
  delete $("status-form").dataset.dirty;
  renderStatus();
}

async function removeGroup(group) {
  if (!confirm(`Remove the group “${group.name}”? Its contacts stay.`)) return;
  await api("DELETE", `/groups/${segment(group.id)}`);
  await reload(["contacts"]);
}

async function acceptRequest(uri, name, into) {
  await api("POST", "/requests/accept", {
    uri,
    name: name.trim() || null,
    into: into || null,
  });
  await reload(["contacts", "requests", "blocked"]);
}

async function blockAddress(uri) {
  if (!confirm(`Block ${uri}? It will see you as offline.`)) return;
  await api("POST", "/requests/block", { uri });
  await reload(["contacts", "requests", "blocked"]);
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(reader.error ?? new Error("the file could not be read"));
    reader.readAsDataURL(file);
  });
}

// ---- the contact dialog ------------------------------------------------------------------

function detailRow(term, ...value) {
  return [el("dt", {}, term), el("dd", {}, ...value)];
}

function tupleItem(tuple) {
  const state = tuple.extended ?? (tuple.open === true ? "open" : "closed");
  const rows = [
    ...detailRow("State", state),
    ...(tuple.notes.length ? detailRow("Note", tuple.notes.join(" / ")) : []),
    ...(tuple.device_info
      ? detailRow(
          "Device",
          [tuple.device_info.user_agent, tuple.device_info.hostname && `on ${tuple.device_info.hostname}`]
            .filter(Boolean)
            .join(" ") || "unnamed",
        )
      : []),
    ...(tuple.user_input ? detailRow("Input", tuple.user_input.idle ? "idle" : "active") : []),
    ...(tuple.contact ? detailRow("Contact", tuple.contact) : []),
    ...(tuple.capabilities.length ? detailRow("Media", tuple.capabilities.join(", ")) : []),
    ...(tuple.homepage ? detailRow("Homepage", safeLink(tuple.homepage, tuple.homepage)) : []),
    ...(tuple.timestamp ? detailRow("Changed", tuple.timestamp) : []),
  ];
  return el("li", {}, el("strong", {}, `Service ${tuple.id}`), el("dl", { class: "details" }, ...rows));
}

function resourceItem(resource) {
  const documents = resource.documents ?? [];
  const persons = documents.flatMap((d) => d.persons);
  const tuples = documents.flatMap((d) => d.tuples);
  return el(
    "li",
    {},
    el("strong", {}, resource.uri),
    ` — subscription ${resource.state}`,
    persons.length
      ? el(
          "ul",
          {},
          ...persons.map((p) =>
            el(
              "li",
              {},
              `Person ${p.id}: `,
              [...p.activities, ...p.notes].join(", ") || "no activity",
            ),
          ),
        )
      : null,
    tuples.length ? el("ul", {}, ...tuples.map(tupleItem)) : null,
  );
}

function renderContactDetails(info) {
  $("contact-dialog-title").textContent = info.name;
  const a = info.availability;
  const big = avatarNode(info, "large");
  const facts = el(
    "dl",
    { class: "details" },
    ...detailRow("State", stateDot(a.state), contactStateWords(a)),
    ...(a.note ? detailRow("Note", a.note) : []),
    ...detailRow("Groups", info.groups.join(", ") || "none"),
    ...detailRow(
      "Presence",
      `${info.presence_policy}${info.subscribe ? ", subscribed" : ", not subscribed"}`,
    ),
  );
  const resources = info.resources.length
    ? el("ul", { class: "resources" }, ...info.resources.map(resourceItem))
    : el("p", { class: "empty" }, "Nothing published yet.");
  rerender($("contact-details"), [info, avatarSource(info)], () => [
    el("div", { class: "contact-head" }, big, facts),
    resources,
  ]);

  rerender($("contact-uris"), info.uris, () =>
    info.uris.map((u) =>
      el(
        "li",
        {},
        el("span", {}, u.uri + (u.type ? ` (${u.type})` : "")),
        info.uris.length > 1
          ? button("Remove", () => editContact({ remove_uri: u.uri }), {
              "data-focus": `remove-uri:${u.id}`,
              "aria-label": `Remove the address ${u.uri}`,
            })
          : null,
      ),
    ),
  );
  fill($("rename-name"), info.name);
  fill($("move-group"), info.groups[0]);
  fill($("policy-select"), info.presence_policy);
}

async function showContactDetails(id) {
  try {
    const info = await api("GET", `/contacts/${segment(id)}/info`);
    $("contact-dialog-gone").hidden = true;
    renderContactDetails(info);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    $("contact-dialog-gone").hidden = false;
  }
}

async function openContact(id, opener) {
  for (const form of $("contact-dialog").querySelectorAll("form")) {
    form.reset();
    delete form.dataset.dirty;
  }
  await showContactDetails(id);
  view.openContact = id;
  view.openedFrom = opener.dataset.focus;
  $("contact-dialog").showModal();
}

async function editContact(change) {
  await api("PATCH", `/contacts/${segment(view.openContact)}`, change);
  await reload(["contacts", "requests", "blocked"]);
}

// ---- wiring ------------------------------------------------------------------------------

function wire() {
  $("message-close").addEventListener("click", () => {
    $("message").hidden = true;
  });

  const statusForm = $("status-form");
  statusForm.addEventListener("change", noteFollowsState);
  onSubmit(statusForm, (form) => setStatus(form.elements.status.value, $("status-note").value));

  onSubmit($("offline-note-form"), async () => {
    view.status = await api("PUT", "/offline-note", { note: $("offline-note").value });
    renderStatus();
  });
  $("offline-note-clear").addEventListener("click", (event) =>
    run(event.currentTarget, async () => {
      view.status = await api("PUT", "/offline-note", { note: null });
      delete $("offline-note-form").dataset.dirty;
      renderStatus();
    }),
  );

  onSubmit($("avatar-form"), async (form) => {
    const file = form.elements.file.files[0];
    if (!file) throw new Error("choose a picture first");
    if (file.size > MAX_AVATAR_BYTES) {
      throw new Error(`${file.name} is larger than ${MAX_AVATAR_BYTES / 1024 / 1024} MiB`);
    }
    view.status = await api("PUT", "/avatar", { png: await readBase64(file) });
    form.reset();
    renderStatus();
  });
  $("avatar-remove").addEventListener("click", (event) =>
    run(event.currentTarget, async () => {
      view.status = await api("PUT", "/avatar", { png: null });
      renderStatus();
    }),
  );

  onSubmit($("add-contact-form"), async (form) => {
    const value = (name) => form.elements[name].value.trim() || null;
    await api("POST", "/contacts", { uri: value("uri"), name: value("name"), group: value("group") });
    form.reset();
    await reload(["contacts", "requests"]);
  });

  onSubmit($("add-group-form"), async (form) => {
    await api("POST", "/groups", { name: form.elements.name.value.trim() });
    form.reset();
    await reload(["contacts"]);
  });

  const dialog = $("contact-dialog");
  $("contact-dialog-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    view.openContact = null;
    // The list may have been rebuilt meanwhile: find the opening button by its key.
    const opener = [...document.querySelectorAll("[data-focus]")].find(
      (node) => node.dataset.focus === view.openedFrom,
    );
    opener?.focus();
  });
  onSubmit($("rename-form"), (form) => editContact({ name: form.elements.name.value.trim() }));
  onSubmit($("policy-form"), (form) => editContact({ presence: form.elements.presence.value }));
  onSubmit($("add-uri-form"), async (form) => {
    await editContact({ add_uri: form.elements.uri.value.trim() });
    form.reset();
  });
  onSubmit($("move-form"), async (form) => {
    const group = form.elements.group.value.trim() || null;
    await api("POST", `/contacts/${segment(view.openContact)}/move`, { group });
    await reload(["contacts"]);
  });
  $("contact-remove").addEventListener("click", (event) =>
    run(event.currentTarget, async () => {
      const name = $("contact-dialog-title").textContent;
      if (!confirm(`Remove ${name} from your contacts?`)) return;
      await api("DELETE", `/contacts/${segment(view.openContact)}`);
      dialog.close();
      await reload(["contacts", "requests", "blocked"]);
    }),
  );
}

wire();
followEvents();
