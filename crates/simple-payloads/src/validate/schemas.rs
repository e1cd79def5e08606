//! Hand transcription of the XCAP application usage schemas into the model of `model.rs`:
//! resourcelists.xsd (RFC 4826 §3.2), rlsservices.xsd (RFC 4826 §4.2), common-policy.xsd
//! (RFC 4745 §14), pres-rules.xsd (RFC 5025 §5), OMA xdm_commonPolicy-v1_0.xsd, pidf.xsd
//! (RFC 3863 §4.4), data-model.xsd (RFC 4479 §4), rpid.xsd (RFC 4480 §6), cipid.xsd (RFC 4482 §4),
//! caps.xsd (RFC 5196 §5), OMA pres-content (OMA-SUP-XSD_prs_presContent), xcap-caps.xsd
//! (RFC 4825 §12.5), OMA xcap-directory, xcap-error.xsd (RFC 4825 §11.2), rlmi.xsd (RFC 4662
//! §6) and xml.xsd.
//!
//! Each item names the XSD construct it mirrors; the copies of the XSDs in the crate's
//! `schemas/` directory are the reference, and `tests/xmllint_oracle.rs` checks the two agree.
//! addressbook.xsd (Blink's `urn:ag-projects:xml:ns:addressbook`) declares only types and no
//! global element, so lax wildcards never find a declaration for its elements: like libxml2,
//! we accept them unvalidated.

use super::model::{
    any, attr, choice, decl, el, elements, opt, plus, required, seq, simple, star, wildcard,
    AttributeDecl, Content, ElementDecl, Namespaces, Particle, Process, SchemaSet, Type, ANY_URI,
    BOOLEAN, DATE_TIME, EMPTY, LANG_STRING, STRING, TOKEN, XML_ATTRIBUTES, XML_LANG,
};
use super::simple::Simple;

pub(crate) const RL: &str = "urn:ietf:params:xml:ns:resource-lists";
pub(crate) const RLS: &str = "urn:ietf:params:xml:ns:rls-services";
pub(crate) const CP: &str = "urn:ietf:params:xml:ns:common-policy";
pub(crate) const PR: &str = "urn:ietf:params:xml:ns:pres-rules";
pub(crate) const OCP: &str = "urn:oma:xml:xdm:common-policy";
pub(crate) const PIDF: &str = "urn:ietf:params:xml:ns:pidf";
pub(crate) const DM: &str = "urn:ietf:params:xml:ns:pidf:data-model";
pub(crate) const RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
pub(crate) const CIPID: &str = "urn:ietf:params:xml:ns:pidf:cipid";
pub(crate) const CAPS: &str = "urn:ietf:params:xml:ns:pidf:caps";
pub(crate) const PRES_CONTENT: &str = "urn:oma:xml:prs:pres-content";
pub(crate) const XCAP_CAPS: &str = "urn:ietf:params:xml:ns:xcap-caps";
pub(crate) const XCAP_DIRECTORY: &str = "urn:oma:xml:xdm:xcap-directory";
pub(crate) const XCAP_ERROR: &str = "urn:ietf:params:xml:ns:xcap-error";
pub(crate) const RLMI: &str = "urn:ietf:params:xml:ns:rlmi";

const fn other_lax(target: &'static str) -> Particle {
    any(Namespaces::Other(target), Process::Lax)
}

/// `<xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>`
const fn extensions(target: &'static str) -> Particle {
    star(other_lax(target))
}

// ---- resourcelists.xsd --------------------------------------------------------------------------

static RL_DISPLAY_NAME: ElementDecl = decl(RL, "display-name", &LANG_STRING);

/// complexType listType (also the type of rls:list).
static RL_LIST_TYPE: Type = Type {
    attributes: &[attr("name", Simple::String)],
    any_attribute: wildcard(Namespaces::Other(RL), Process::Lax),
    content: Content::Elements(seq(&[
        opt(el(&RL_DISPLAY_NAME)),
        star(choice(&[
            el(&decl(RL, "list", &RL_LIST_TYPE)),
            el(&decl(RL, "external", &RL_EXTERNAL_TYPE)),
            el(&decl(RL, "entry", &RL_ENTRY_TYPE)),
            el(&decl(RL, "entry-ref", &RL_ENTRY_REF_TYPE)),
        ])),
        extensions(RL),
    ])),
};

/// entryType, entry-refType and externalType differ only in their attribute.
macro_rules! rl_type {
    ($attribute:expr) => {
        Type {
            attributes: &[$attribute],
            any_attribute: wildcard(Namespaces::Other(RL), Process::Lax),
            content: Content::Elements(seq(&[opt(el(&RL_DISPLAY_NAME)), extensions(RL)])),
        }
    };
}

static RL_ENTRY_TYPE: Type = rl_type!(required("uri", Simple::AnyUri));
static RL_ENTRY_REF_TYPE: Type = rl_type!(required("ref", Simple::AnyUri));
static RL_EXTERNAL_TYPE: Type = rl_type!(attr("anchor", Simple::AnyUri));

static RL_RESOURCE_LISTS: ElementDecl = decl(
    RL,
    "resource-lists",
    &elements(star(el(&decl(RL, "list", &RL_LIST_TYPE)))),
);

pub(crate) static RESOURCE_LISTS: SchemaSet = SchemaSet {
    root: &RL_RESOURCE_LISTS,
    elements: &[&RL_RESOURCE_LISTS],
    attributes: &XML_ATTRIBUTE_REFS,
};

static XML_ATTRIBUTE_REFS: [&AttributeDecl; 3] =
    [&XML_ATTRIBUTES[0], &XML_ATTRIBUTES[1], &XML_ATTRIBUTES[2]];

// ---- rlsservices.xsd ----------------------------------------------------------------------------

static RLS_SERVICE_TYPE: Type = Type {
    attributes: &[required("uri", Simple::AnyUri)],
    any_attribute: wildcard(Namespaces::Other(RLS), Process::Lax),
    content: Content::Elements(seq(&[
        choice(&[
            el(&decl(RLS, "resource-list", &ANY_URI)),
            el(&decl(RLS, "list", &RL_LIST_TYPE)),
        ]),
        opt(el(&decl(
            RLS,
            "packages",
            &elements(star(seq(&[
                el(&decl(RLS, "package", &STRING)),
                extensions(RLS),
            ]))),
        ))),
        extensions(RLS),
    ])),
};

static RLS_ROOT: ElementDecl = decl(
    RLS,
    "rls-services",
    &elements(star(el(&decl(RLS, "service", &RLS_SERVICE_TYPE)))),
);

pub(crate) static RLS_SERVICES: SchemaSet = SchemaSet {
    root: &RLS_ROOT,
    elements: &[&RLS_ROOT, &RL_RESOURCE_LISTS],
    attributes: &XML_ATTRIBUTE_REFS,
};

// ---- common-policy.xsd + pres-rules.xsd + OMA common policy ---------------------------------------

static CP_EXTENSIBLE: Type = elements(extensions(CP));

static CP_RULE_TYPE: Type = Type {
    attributes: &[required("id", Simple::Id)],
    any_attribute: None,
    content: Content::Elements(seq(&[
        opt(el(&decl(CP, "conditions", &CP_CONDITIONS_TYPE))),
        opt(el(&decl(CP, "actions", &CP_EXTENSIBLE))),
        opt(el(&decl(CP, "transformations", &CP_EXTENSIBLE))),
    ])),
};

static CP_CONDITIONS_TYPE: Type = elements(plus(choice(&[
    opt(el(&decl(CP, "identity", &CP_IDENTITY_TYPE))),
    opt(el(&decl(
        CP,
        "sphere",
        &Type {
            attributes: &[required("value", Simple::String)],
            any_attribute: None,
            content: Content::Empty,
        },
    ))),
    opt(el(&decl(
        CP,
        "validity",
        &elements(plus(seq(&[
            el(&decl(CP, "from", &DATE_TIME)),
            el(&decl(CP, "until", &DATE_TIME)),
        ]))),
    ))),
    extensions(CP),
])));

static CP_IDENTITY_TYPE: Type = elements(plus(choice(&[
    el(&decl(
        CP,
        "one",
        &Type {
            attributes: &[required("id", Simple::AnyUri)],
            any_attribute: None,
            content: Content::Elements(seq(&[opt(other_lax(CP))])),
        },
    )),
    el(&decl(
        CP,
        "many",
        &Type {
            attributes: &[attr("domain", Simple::String)],
            any_attribute: None,
            content: Content::Elements(star(choice(&[
                el(&decl(
                    CP,
                    "except",
                    &Type {
                        attributes: &[attr("domain", Simple::String), attr("id", Simple::AnyUri)],
                        any_attribute: None,
                        content: Content::Empty,
                    },
                )),
                opt(other_lax(CP)),
            ]))),
        },
    )),
    other_lax(CP),
])));

static CP_RULESET: ElementDecl = decl(
    CP,
    "ruleset",
    &elements(star(el(&decl(CP, "rule", &CP_RULE_TYPE)))),
);

static PR_SERVICE_URI_SCHEME: ElementDecl = decl(PR, "service-uri-scheme", &TOKEN);
static PR_CLASS: ElementDecl = decl(PR, "class", &TOKEN);
static PR_OCCURRENCE_ID: ElementDecl = decl(PR, "occurrence-id", &TOKEN);
static PR_SERVICE_URI: ElementDecl = decl(PR, "service-uri", &ANY_URI);
static PR_DEVICE_ID: ElementDecl = decl(PR, "deviceID", &ANY_URI);

/// provideServicePermission / provideDevicePermission / providePersonPermission.
macro_rules! pr_permission {
    ($all:expr, $items:expr $(,)?) => {
        elements(choice(&[el($all), star(choice($items))]))
    };
}

static PR_PROVIDE_SERVICES: ElementDecl = decl(
    PR,
    "provide-services",
    &pr_permission!(
        &decl(PR, "all-services", &EMPTY),
        &[
            el(&PR_SERVICE_URI),
            el(&PR_SERVICE_URI_SCHEME),
            el(&PR_OCCURRENCE_ID),
            el(&PR_CLASS),
            other_lax(PR)
        ],
    ),
);
static PR_PROVIDE_DEVICES: ElementDecl = decl(
    PR,
    "provide-devices",
    &pr_permission!(
        &decl(PR, "all-devices", &EMPTY),
        &[
            el(&PR_DEVICE_ID),
            el(&PR_OCCURRENCE_ID),
            el(&PR_CLASS),
            other_lax(PR)
        ],
    ),
);
static PR_PROVIDE_PERSONS: ElementDecl = decl(
    PR,
    "provide-persons",
    &pr_permission!(
        &decl(PR, "all-persons", &EMPTY),
        &[el(&PR_OCCURRENCE_ID), el(&PR_CLASS), other_lax(PR)]
    ),
);

macro_rules! boolean_permissions {
    ($($ident:ident = $name:literal),* $(,)?) => {
        $(static $ident: ElementDecl = decl(PR, $name, &BOOLEAN);)*
    };
}

boolean_permissions! {
    PR_PROVIDE_ACTIVITIES = "provide-activities",
    PR_PROVIDE_CLASS = "provide-class",
    PR_PROVIDE_DEVICE_ID = "provide-deviceID",
    PR_PROVIDE_MOOD = "provide-mood",
    PR_PROVIDE_PLACE_IS = "provide-place-is",
    PR_PROVIDE_PLACE_TYPE = "provide-place-type",
    PR_PROVIDE_PRIVACY = "provide-privacy",
    PR_PROVIDE_RELATIONSHIP = "provide-relationship",
    PR_PROVIDE_STATUS_ICON = "provide-status-icon",
    PR_PROVIDE_SPHERE = "provide-sphere",
    PR_PROVIDE_TIME_OFFSET = "provide-time-offset",
    PR_PROVIDE_NOTE = "provide-note",
}

static PR_PROVIDE_USER_INPUT: ElementDecl = decl(
    PR,
    "provide-user-input",
    &simple(Simple::StringEnum(&["false", "bare", "thresholds", "full"])),
);
static PR_SUB_HANDLING: ElementDecl = decl(
    PR,
    "sub-handling",
    &simple(Simple::TokenEnum(&[
        "block",
        "confirm",
        "polite-block",
        "allow",
    ])),
);
static PR_PROVIDE_UNKNOWN_ATTRIBUTE: ElementDecl = decl(
    PR,
    "provide-unknown-attribute",
    &Type {
        attributes: &[
            required("name", Simple::String),
            required("ns", Simple::String),
        ],
        any_attribute: None,
        content: Content::Simple(Simple::Boolean),
    },
);
static PR_PROVIDE_ALL_ATTRIBUTES: ElementDecl = decl(PR, "provide-all-attributes", &EMPTY);

static OCP_OTHER_IDENTITY: ElementDecl = decl(OCP, "other-identity", &EMPTY);
static OCP_ANONYMOUS_REQUEST: ElementDecl = decl(OCP, "anonymous-request", &EMPTY);
static OCP_EXTERNAL_LIST: ElementDecl = decl(
    OCP,
    "external-list",
    &elements(star(el(&decl(
        OCP,
        "entry",
        &Type {
            attributes: &[attr("anc", Simple::AnyUri)],
            any_attribute: wildcard(Namespaces::Any, Process::Lax),
            content: Content::Empty,
        },
    )))),
);

pub(crate) static PRES_RULES: SchemaSet = SchemaSet {
    root: &CP_RULESET,
    elements: &[
        &CP_RULESET,
        &PR_SERVICE_URI_SCHEME,
        &PR_CLASS,
        &PR_OCCURRENCE_ID,
        &PR_SERVICE_URI,
        &PR_DEVICE_ID,
        &PR_PROVIDE_SERVICES,
        &PR_PROVIDE_DEVICES,
        &PR_PROVIDE_PERSONS,
        &PR_PROVIDE_ACTIVITIES,
        &PR_PROVIDE_CLASS,
        &PR_PROVIDE_DEVICE_ID,
        &PR_PROVIDE_MOOD,
        &PR_PROVIDE_PLACE_IS,
        &PR_PROVIDE_PLACE_TYPE,
        &PR_PROVIDE_PRIVACY,
        &PR_PROVIDE_RELATIONSHIP,
        &PR_PROVIDE_STATUS_ICON,
        &PR_PROVIDE_SPHERE,
        &PR_PROVIDE_TIME_OFFSET,
        &PR_PROVIDE_USER_INPUT,
        &PR_PROVIDE_NOTE,
        &PR_SUB_HANDLING,
        &PR_PROVIDE_UNKNOWN_ATTRIBUTE,
        &PR_PROVIDE_ALL_ATTRIBUTES,
        &OCP_OTHER_IDENTITY,
        &OCP_EXTERNAL_LIST,
        &OCP_ANONYMOUS_REQUEST,
    ],
    // Neither schema imports xml.xsd, so lax attribute wildcards know no global attribute.
    attributes: &[],
};

// ---- pidf.xsd + data-model.xsd + rpid.xsd + cipid.xsd + caps.xsd ---------------------------------

static PIDF_NOTE: ElementDecl = decl(PIDF, "note", &LANG_STRING);

static PIDF_PRESENCE: ElementDecl = decl(
    PIDF,
    "presence",
    &Type {
        attributes: &[required("entity", Simple::AnyUri)],
        any_attribute: None,
        content: Content::Elements(seq(&[
            star(el(&decl(PIDF, "tuple", &PIDF_TUPLE_TYPE))),
            star(el(&PIDF_NOTE)),
            extensions(PIDF),
        ])),
    },
);

static PIDF_TUPLE_TYPE: Type = Type {
    attributes: &[required("id", Simple::Id)],
    any_attribute: None,
    content: Content::Elements(seq(&[
        el(&decl(
            PIDF,
            "status",
            &elements(seq(&[
                opt(el(&decl(
                    PIDF,
                    "basic",
                    &simple(Simple::StringEnum(&["open", "closed"])),
                ))),
                extensions(PIDF),
            ])),
        )),
        extensions(PIDF),
        opt(el(&decl(
            PIDF,
            "contact",
            &Type {
                attributes: &[attr("priority", Simple::QValue)],
                any_attribute: None,
                content: Content::Simple(Simple::AnyUri),
            },
        ))),
        star(el(&PIDF_NOTE)),
        opt(el(&decl(PIDF, "timestamp", &DATE_TIME))),
    ])),
};

static PIDF_MUST_UNDERSTAND: AttributeDecl = AttributeDecl {
    ns: Some(PIDF),
    name: "mustUnderstand",
    ty: Simple::Boolean,
    required: false,
};

static DM_NOTE: ElementDecl = decl(DM, "note", &LANG_STRING);
static DM_TIMESTAMP: ElementDecl = decl(DM, "timestamp", &DATE_TIME);
static DM_DEVICE_ID: ElementDecl = decl(DM, "deviceID", &ANY_URI);
static DM_DEVICE: ElementDecl = decl(
    DM,
    "device",
    &Type {
        attributes: &[required("id", Simple::Id)],
        any_attribute: None,
        content: Content::Elements(seq(&[
            extensions(DM),
            el(&DM_DEVICE_ID),
            star(el(&DM_NOTE)),
            opt(el(&DM_TIMESTAMP)),
        ])),
    },
);
static DM_PERSON: ElementDecl = decl(
    DM,
    "person",
    &Type {
        attributes: &[required("id", Simple::Id)],
        any_attribute: None,
        content: Content::Elements(seq(&[
            extensions(DM),
            star(el(&DM_NOTE)),
            opt(el(&DM_TIMESTAMP)),
        ])),
    },
);

/// rpid: `<xs:attributeGroup ref="fromUntil"/>`, `id` and `<xs:anyAttribute namespace="##any">`.
const RPID_COMMON_ATTRIBUTES: [AttributeDecl; 3] = [
    attr("from", Simple::DateTime),
    attr("until", Simple::DateTime),
    attr("id", Simple::Id),
];

const fn rpid_type(content: Content) -> Type {
    Type {
        attributes: &RPID_COMMON_ATTRIBUTES,
        any_attribute: wildcard(Namespaces::Any, Process::Lax),
        content,
    }
}

static RPID_NOTE: ElementDecl = decl(RPID, "note", &LANG_STRING);
static RPID_OTHER: ElementDecl = decl(RPID, "other", &LANG_STRING);
static RPID_UNKNOWN: ElementDecl = decl(RPID, "unknown", &EMPTY);

/// A choice of elements of rpid's `empty` type, followed by further particles.
macro_rules! choice_of_empties {
    ($ns:expr; [$($name:literal),* $(,)?] $(, $extra:expr)* $(,)?) => {
        choice(&[$(el(&decl($ns, $name, &EMPTY)),)* $($extra),*])
    };
}

/// A sequence of optional xs:string elements, followed by further particles (caps.xsd).
macro_rules! optional_strings {
    ($ns:expr; [$($name:literal),* $(,)?] $(, $extra:expr)* $(,)?) => {
        seq(&[$(opt(el(&decl($ns, $name, &STRING))),)* $($extra),*])
    };
}

static RPID_ACTIVITIES: ElementDecl = decl(
    RPID,
    "activities",
    &rpid_type(Content::Elements(seq(&[
        star(el(&RPID_NOTE)),
        choice(&[
            opt(el(&RPID_UNKNOWN)),
            plus(choice_of_empties!(RPID; [
                "appointment", "away", "breakfast", "busy", "dinner", "holiday", "in-transit",
                "looking-for-work", "meal", "meeting", "on-the-phone", "performance",
                "permanent-absence", "playing", "presentation", "shopping", "sleeping", "spectator",
                "steering", "travel", "tv", "vacation", "working", "worship",
            ], el(&RPID_OTHER), plus(other_lax(RPID)))),
        ]),
    ]))),
);

static RPID_CLASS: ElementDecl = decl(RPID, "class", &TOKEN);

static RPID_MOOD: ElementDecl = decl(
    RPID,
    "mood",
    &rpid_type(Content::Elements(seq(&[
        star(el(&RPID_NOTE)),
        choice(&[
            el(&RPID_UNKNOWN),
            plus(choice_of_empties!(RPID; [
                "afraid", "amazed", "angry", "annoyed", "anxious", "ashamed", "bored", "brave", "calm",
                "cold", "confused", "contented", "cranky", "curious", "depressed", "disappointed",
                "disgusted", "distracted", "embarrassed", "excited", "flirtatious", "frustrated",
                "grumpy", "guilty", "happy", "hot", "humbled", "humiliated", "hungry", "hurt",
                "impressed", "in_awe", "in_love", "indignant", "interested", "invincible", "jealous",
                "lonely", "mean", "moody", "nervous", "neutral", "offended", "playful", "proud",
                "relieved", "remorseful", "restless", "sad", "sarcastic", "serious", "shocked", "shy",
                "sick", "sleepy", "stressed", "surprised", "thirsty", "worried",
            ], el(&RPID_OTHER), plus(other_lax(RPID)))),
        ]),
    ]))),
);

static RPID_PLACE_IS: ElementDecl = decl(
    RPID,
    "place-is",
    &rpid_type(Content::Elements(seq(&[
        star(el(&RPID_NOTE)),
        opt(el(&decl(
            RPID,
            "audio",
            &elements(choice_of_empties!(RPID; ["noisy", "ok", "quiet", "unknown"])),
        ))),
        opt(el(&decl(
            RPID,
            "video",
            &elements(choice_of_empties!(RPID; ["toobright", "ok", "dark", "unknown"])),
        ))),
        opt(el(&decl(
            RPID,
            "text",
            &elements(
                choice_of_empties!(RPID; ["uncomfortable", "inappropriate", "ok", "unknown"]),
            ),
        ))),
    ]))),
);

static RPID_PLACE_TYPE: ElementDecl = decl(
    RPID,
    "place-type",
    &rpid_type(Content::Elements(seq(&[
        star(el(&RPID_NOTE)),
        choice(&[el(&RPID_OTHER), plus(other_lax(RPID))]),
    ]))),
);

static RPID_PRIVACY: ElementDecl = decl(
    RPID,
    "privacy",
    &rpid_type(Content::Elements(seq(&[
        star(el(&RPID_NOTE)),
        choice(&[
            el(&RPID_UNKNOWN),
            seq(&[
                opt(el(&decl(RPID, "audio", &EMPTY))),
                opt(el(&decl(RPID, "text", &EMPTY))),
                opt(el(&decl(RPID, "video", &EMPTY))),
                extensions(RPID),
            ]),
        ]),
    ]))),
);

static RPID_RELATIONSHIP: ElementDecl = decl(
    RPID,
    "relationship",
    &elements(seq(&[
        star(el(&RPID_NOTE)),
        choice_of_empties!(RPID; ["assistant", "associate", "family", "friend"],
            opt(el(&RPID_OTHER)),
            el(&decl(RPID, "self", &EMPTY)),
            el(&decl(RPID, "supervisor", &EMPTY)),
            el(&RPID_UNKNOWN),
            plus(other_lax(RPID))),
    ])),
);

static RPID_SERVICE_CLASS: ElementDecl = decl(
    RPID,
    "service-class",
    &elements(seq(&[
        star(el(&RPID_NOTE)),
        choice_of_empties!(RPID; ["courier", "electronic", "freight", "in-person", "postal", "unknown"],
            plus(other_lax(RPID))),
    ])),
);

static RPID_SPHERE: ElementDecl = decl(
    RPID,
    "sphere",
    &rpid_type(Content::Elements(opt(
        choice_of_empties!(RPID; ["home", "work", "unknown"], plus(other_lax(RPID))),
    ))),
);

static RPID_STATUS_ICON: ElementDecl = decl(
    RPID,
    "status-icon",
    &rpid_type(Content::Simple(Simple::AnyUri)),
);

static RPID_TIME_OFFSET: ElementDecl = decl(
    RPID,
    "time-offset",
    &Type {
        attributes: &[
            attr("from", Simple::DateTime),
            attr("until", Simple::DateTime),
            attr("description", Simple::String),
            attr("id", Simple::Id),
        ],
        any_attribute: wildcard(Namespaces::Any, Process::Lax),
        content: Content::Simple(Simple::Integer),
    },
);

static RPID_USER_INPUT: ElementDecl = decl(
    RPID,
    "user-input",
    &Type {
        attributes: &[
            attr("idle-threshold", Simple::PositiveInteger),
            attr("last-input", Simple::DateTime),
            attr("id", Simple::Id),
        ],
        any_attribute: wildcard(Namespaces::Any, Process::Lax),
        content: Content::Simple(Simple::StringEnum(&["active", "idle"])),
    },
);

static CIPID_CARD: ElementDecl = decl(CIPID, "card", &ANY_URI);
static CIPID_DISPLAY_NAME: ElementDecl = decl(CIPID, "display-name", &STRING);
static CIPID_HOMEPAGE: ElementDecl = decl(CIPID, "homepage", &ANY_URI);
static CIPID_ICON: ElementDecl = decl(CIPID, "icon", &ANY_URI);
static CIPID_MAP: ElementDecl = decl(CIPID, "map", &ANY_URI);
static CIPID_SOUND: ElementDecl = decl(CIPID, "sound", &ANY_URI);

/// caps.xsd: a capability with the `<supported>` / `<notsupported>` pair of the same type.
macro_rules! caps_feature {
    ($ident:ident = $name:literal, $inner:expr) => {
        static $ident: ElementDecl = decl(
            CAPS,
            $name,
            &elements(seq(&[
                opt(el(&decl(CAPS, "supported", &$inner))),
                opt(el(&decl(CAPS, "notsupported", &$inner))),
            ])),
        );
    };
}

caps_feature!(
    CAPS_ACTOR = "actor",
    elements(
        optional_strings!(CAPS; ["attendant", "information", "msg-taker", "principal"], extensions(CAPS))
    )
);
caps_feature!(
    CAPS_CLASS = "class",
    elements(optional_strings!(CAPS; ["business", "personal"], extensions(CAPS)))
);
caps_feature!(
    CAPS_DUPLEX = "duplex",
    elements(
        optional_strings!(CAPS; ["full", "half", "receive-only", "send-only"], extensions(CAPS))
    )
);
caps_feature!(
    CAPS_EVENT_PACKAGES = "event-packages",
    elements(optional_strings!(CAPS; [
    "conference", "dialog", "kpml", "message-summary", "poc-settings", "presence", "reg", "refer",
    "Siemens-RTP-Stats", "spirits-INDPs", "spirits-user-prof", "winfo",
], extensions(CAPS)))
);
caps_feature!(
    CAPS_EXTENSIONS = "extensions",
    elements(optional_strings!(CAPS; [
    "rel100", "early-session", "eventlist", "from-change", "gruu", "hist-info", "join", "norefersub",
    "path", "precondition", "pref", "privacy", "recipient-list-invite", "recipient-list-subscribe",
    "replaces", "resource-priority", "sdp-anat", "sec-agree", "tdialog", "timer",
], extensions(CAPS)))
);
caps_feature!(
    CAPS_METHODS = "methods",
    elements(optional_strings!(CAPS; [
    "ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "PRACK", "PUBLISH",
    "REFER", "REGISTER", "SUBSCRIBE", "UPDATE",
], extensions(CAPS)))
);
caps_feature!(
    CAPS_MOBILITY = "mobility",
    elements(optional_strings!(CAPS; ["fixed", "mobile"], extensions(CAPS)))
);
caps_feature!(
    CAPS_SCHEMES = "schemes",
    elements(plus(el(&decl(CAPS, "s", &STRING))))
);
caps_feature!(
    CAPS_LANGUAGES = "languages",
    elements(plus(el(&decl(CAPS, "l", &STRING))))
);
caps_feature!(
    CAPS_PRIORITY = "priority",
    elements(seq(&[
        star(el(&decl(
            CAPS,
            "equals",
            &Type {
                attributes: &[required("value", Simple::Integer)],
                any_attribute: None,
                content: Content::Empty
            }
        ))),
        // "higherhan" is the element name as published in RFC 5196.
        star(el(&decl(
            CAPS,
            "higherhan",
            &Type {
                attributes: &[required("minvalue", Simple::Integer)],
                any_attribute: None,
                content: Content::Empty
            }
        ))),
        star(el(&decl(
            CAPS,
            "lowerthan",
            &Type {
                attributes: &[required("maxvalue", Simple::Integer)],
                any_attribute: None,
                content: Content::Empty
            }
        ))),
        star(el(&decl(
            CAPS,
            "range",
            &Type {
                attributes: &[
                    required("minvalue", Simple::Integer),
                    required("maxvalue", Simple::Integer)
                ],
                any_attribute: None,
                content: Content::Empty,
            }
        ))),
        extensions(CAPS),
    ]))
);

static CAPS_DESCRIPTION: ElementDecl = decl(CAPS, "description", &LANG_STRING);

static CAPS_SERVCAPS: ElementDecl = decl(
    CAPS,
    "servcaps",
    &Type {
        attributes: &[],
        any_attribute: wildcard(Namespaces::Any, Process::Lax),
        content: Content::Elements(seq(&[
            opt(el(&CAPS_ACTOR)),
            opt(el(&decl(CAPS, "application", &BOOLEAN))),
            opt(el(&decl(CAPS, "audio", &BOOLEAN))),
            opt(el(&decl(CAPS, "automata", &BOOLEAN))),
            opt(el(&CAPS_CLASS)),
            opt(el(&decl(CAPS, "control", &BOOLEAN))),
            opt(el(&decl(CAPS, "data", &BOOLEAN))),
            star(el(&CAPS_DESCRIPTION)),
            opt(el(&CAPS_DUPLEX)),
            opt(el(&CAPS_EVENT_PACKAGES)),
            opt(el(&CAPS_EXTENSIONS)),
            opt(el(&decl(CAPS, "isfocus", &BOOLEAN))),
            opt(el(&decl(CAPS, "message", &BOOLEAN))),
            opt(el(&CAPS_METHODS)),
            opt(el(&CAPS_LANGUAGES)),
            opt(el(&CAPS_PRIORITY)),
            opt(el(&CAPS_SCHEMES)),
            opt(el(&decl(CAPS, "text", &BOOLEAN))),
            star(el(&decl(CAPS, "type", &STRING))),
            opt(el(&decl(CAPS, "video", &BOOLEAN))),
            extensions(CAPS),
        ])),
    },
);

static CAPS_DEVCAPS: ElementDecl = decl(
    CAPS,
    "devcaps",
    &Type {
        attributes: &[],
        any_attribute: wildcard(Namespaces::Any, Process::Lax),
        content: Content::Elements(seq(&[
            star(el(&CAPS_DESCRIPTION)),
            opt(el(&CAPS_MOBILITY)),
            extensions(CAPS),
        ])),
    },
);

pub(crate) static PIDF_MANIPULATION: SchemaSet = SchemaSet {
    root: &PIDF_PRESENCE,
    elements: &[
        &PIDF_PRESENCE,
        &DM_DEVICE_ID,
        &DM_DEVICE,
        &DM_PERSON,
        &RPID_ACTIVITIES,
        &RPID_CLASS,
        &RPID_MOOD,
        &RPID_PLACE_IS,
        &RPID_PLACE_TYPE,
        &RPID_PRIVACY,
        &RPID_RELATIONSHIP,
        &RPID_SERVICE_CLASS,
        &RPID_SPHERE,
        &RPID_STATUS_ICON,
        &RPID_TIME_OFFSET,
        &RPID_USER_INPUT,
        &CIPID_CARD,
        &CIPID_DISPLAY_NAME,
        &CIPID_HOMEPAGE,
        &CIPID_ICON,
        &CIPID_MAP,
        &CIPID_SOUND,
        &CAPS_SERVCAPS,
        &CAPS_DEVCAPS,
    ],
    attributes: &[
        &XML_ATTRIBUTES[0],
        &XML_ATTRIBUTES[1],
        &XML_ATTRIBUTES[2],
        &PIDF_MUST_UNDERSTAND,
    ],
};

// ---- OMA pres-content -----------------------------------------------------------------------------

/// xs:string extended with `<xs:anyAttribute processContents="lax"/>` (namespace ##any).
static PC_STRING: Type = Type {
    attributes: &[],
    any_attribute: wildcard(Namespaces::Any, Process::Lax),
    content: Content::Simple(Simple::String),
};

static PC_CONTENT: ElementDecl = decl(
    PRES_CONTENT,
    "content",
    &Type {
        attributes: &[],
        any_attribute: wildcard(Namespaces::Any, Process::Lax),
        content: Content::Elements(seq(&[
            opt(el(&decl(PRES_CONTENT, "mime-type", &PC_STRING))),
            opt(el(&decl(PRES_CONTENT, "encoding", &PC_STRING))),
            star(el(&decl(
                PRES_CONTENT,
                "description",
                &Type {
                    attributes: &[XML_LANG],
                    any_attribute: wildcard(Namespaces::Any, Process::Lax),
                    content: Content::Simple(Simple::String),
                },
            ))),
            el(&decl(PRES_CONTENT, "data", &PC_STRING)),
            extensions(PRES_CONTENT),
        ])),
    },
);

pub(crate) static PRES_CONTENT_SET: SchemaSet = SchemaSet {
    root: &PC_CONTENT,
    elements: &[&PC_CONTENT],
    attributes: &XML_ATTRIBUTE_REFS,
};

// ---- xcap-caps.xsd, xcap-directory.xsd, xcap-error.xsd ------------------------------------------------

static XCAP_CAPS_ROOT: ElementDecl = decl(
    XCAP_CAPS,
    "xcap-caps",
    &elements(seq(&[
        el(&decl(
            XCAP_CAPS,
            "auids",
            &elements(star(el(&decl(XCAP_CAPS, "auid", &STRING)))),
        )),
        el(&decl(
            XCAP_CAPS,
            "extensions",
            &elements(star(el(&decl(XCAP_CAPS, "extension", &STRING)))),
        )),
        el(&decl(
            XCAP_CAPS,
            "namespaces",
            &elements(star(el(&decl(XCAP_CAPS, "namespace", &ANY_URI)))),
        )),
        // processContents defaults to strict here, unlike every other extension point.
        star(any(Namespaces::Other(XCAP_CAPS), Process::Strict)),
    ])),
);

pub(crate) static XCAP_CAPS_SET: SchemaSet = SchemaSet {
    root: &XCAP_CAPS_ROOT,
    elements: &[&XCAP_CAPS_ROOT],
    attributes: &[],
};

static XCAP_DIRECTORY_ROOT: ElementDecl = decl(
    XCAP_DIRECTORY,
    "xcap-directory",
    &elements(star(el(&decl(
        XCAP_DIRECTORY,
        "folder",
        &Type {
            attributes: &[required("auid", Simple::String)],
            any_attribute: None,
            content: Content::Elements(choice(&[
                star(el(&decl(
                    XCAP_DIRECTORY,
                    "entry",
                    &Type {
                        attributes: &[
                            required("uri", Simple::AnyUri),
                            required("etag", Simple::String),
                            attr("last-modified", Simple::DateTime),
                            attr("size", Simple::NonNegativeInteger),
                        ],
                        any_attribute: wildcard(Namespaces::Any, Process::Lax),
                        content: Content::Empty,
                    },
                ))),
                el(&decl(XCAP_DIRECTORY, "error-code", &STRING)),
            ])),
        },
    )))),
);

pub(crate) static XCAP_DIRECTORY_SET: SchemaSet = SchemaSet {
    root: &XCAP_DIRECTORY_ROOT,
    elements: &[&XCAP_DIRECTORY_ROOT],
    attributes: &XML_ATTRIBUTE_REFS,
};

static PHRASE_ONLY: Type = Type {
    attributes: &[attr("phrase", Simple::String)],
    any_attribute: None,
    content: Content::Empty,
};

static XE_EXTENSION: ElementDecl = decl(
    XCAP_ERROR,
    "extension",
    &elements(star(any(Namespaces::Any, Process::Lax))),
);
static XE_SCHEMA_VALIDATION_ERROR: ElementDecl =
    decl(XCAP_ERROR, "schema-validation-error", &PHRASE_ONLY);
static XE_NOT_XML_FRAG: ElementDecl = decl(XCAP_ERROR, "not-xml-frag", &PHRASE_ONLY);
static XE_NO_PARENT: ElementDecl = decl(
    XCAP_ERROR,
    "no-parent",
    &Type {
        attributes: &[attr("phrase", Simple::String)],
        any_attribute: None,
        content: Content::Elements(seq(&[opt(el(&decl(XCAP_ERROR, "ancestor", &ANY_URI)))])),
    },
);
static XE_CANNOT_INSERT: ElementDecl = decl(XCAP_ERROR, "cannot-insert", &PHRASE_ONLY);
static XE_NOT_XML_ATT_VALUE: ElementDecl = decl(XCAP_ERROR, "not-xml-att-value", &PHRASE_ONLY);
static XE_UNIQUENESS_FAILURE: ElementDecl = decl(
    XCAP_ERROR,
    "uniqueness-failure",
    &Type {
        attributes: &[attr("phrase", Simple::String)],
        any_attribute: None,
        content: Content::Elements(seq(&[plus(el(&decl(
            XCAP_ERROR,
            "exists",
            &Type {
                attributes: &[required("field", Simple::String)],
                any_attribute: None,
                content: Content::Elements(opt(seq(&[plus(el(&decl(
                    XCAP_ERROR,
                    "alt-value",
                    &STRING,
                )))]))),
            },
        )))])),
    },
);
static XE_NOT_WELL_FORMED: ElementDecl = decl(XCAP_ERROR, "not-well-formed", &PHRASE_ONLY);
static XE_CONSTRAINT_FAILURE: ElementDecl = decl(XCAP_ERROR, "constraint-failure", &PHRASE_ONLY);
static XE_CANNOT_DELETE: ElementDecl = decl(XCAP_ERROR, "cannot-delete", &PHRASE_ONLY);
static XE_NOT_UTF_8: ElementDecl = decl(XCAP_ERROR, "not-utf-8", &PHRASE_ONLY);

/// `<xs:element ref="error-element"/>`: the abstract head stands for its substitution group.
static XE_ROOT: ElementDecl = decl(
    XCAP_ERROR,
    "xcap-error",
    &elements(seq(&[choice(&[
        el(&XE_EXTENSION),
        el(&XE_SCHEMA_VALIDATION_ERROR),
        el(&XE_NOT_XML_FRAG),
        el(&XE_NO_PARENT),
        el(&XE_CANNOT_INSERT),
        el(&XE_NOT_XML_ATT_VALUE),
        el(&XE_UNIQUENESS_FAILURE),
        el(&XE_NOT_WELL_FORMED),
        el(&XE_CONSTRAINT_FAILURE),
        el(&XE_CANNOT_DELETE),
        el(&XE_NOT_UTF_8),
    ])])),
);

pub(crate) static XCAP_ERROR_SET: SchemaSet = SchemaSet {
    root: &XE_ROOT,
    elements: &[
        &XE_ROOT,
        &XE_EXTENSION,
        &XE_SCHEMA_VALIDATION_ERROR,
        &XE_NOT_XML_FRAG,
        &XE_NO_PARENT,
        &XE_CANNOT_INSERT,
        &XE_NOT_XML_ATT_VALUE,
        &XE_UNIQUENESS_FAILURE,
        &XE_NOT_WELL_FORMED,
        &XE_CONSTRAINT_FAILURE,
        &XE_CANNOT_DELETE,
        &XE_NOT_UTF_8,
    ],
    attributes: &[],
};

// ---- rlmi.xsd -------------------------------------------------------------------------------------

/// `<xs:anyAttribute processContents="lax"/>` (namespace ##any).
const ANY_LAX: Option<super::model::Wildcard> = wildcard(Namespaces::Any, Process::Lax);

static RLMI_NAME: ElementDecl = decl(RLMI, "name", &LANG_STRING);

static RLMI_INSTANCE: ElementDecl = decl(
    RLMI,
    "instance",
    &Type {
        attributes: &[
            required("id", Simple::String),
            required(
                "state",
                Simple::StringEnum(&["active", "pending", "terminated"]),
            ),
            attr("reason", Simple::String),
            attr("cid", Simple::String),
        ],
        any_attribute: ANY_LAX,
        content: Content::Elements(star(any(Namespaces::Any, Process::Lax))),
    },
);

static RLMI_RESOURCE: ElementDecl = decl(
    RLMI,
    "resource",
    &Type {
        attributes: &[required("uri", Simple::AnyUri)],
        any_attribute: ANY_LAX,
        content: Content::Elements(seq(&[star(el(&RLMI_NAME)), star(el(&RLMI_INSTANCE))])),
    },
);

static RLMI_LIST: ElementDecl = decl(
    RLMI,
    "list",
    &Type {
        attributes: &[
            required("uri", Simple::AnyUri),
            required("version", Simple::UnsignedInt),
            required("fullState", Simple::Boolean),
            attr("cid", Simple::String),
        ],
        any_attribute: ANY_LAX,
        content: Content::Elements(seq(&[star(el(&RLMI_NAME)), star(el(&RLMI_RESOURCE))])),
    },
);

/// RFC 4662 §6; not an XCAP usage: the root part of resource list NOTIFYs.
pub(crate) static RLMI_SET: SchemaSet = SchemaSet {
    root: &RLMI_LIST,
    elements: &[&RLMI_LIST, &RLMI_RESOURCE, &RLMI_INSTANCE, &RLMI_NAME],
    attributes: &XML_ATTRIBUTE_REFS,
};
