//! The reader against roxmltree as the oracle: on generated documents, valid and broken, both
//! accept the same ones and record the same things.

use proptest::prelude::*;
use roxmltree::{Document, Node, ParsingOptions};

use super::*;

type Id = (String, Range<usize>);

/// What either reader saw, in comparable form.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    root_is_presence: bool,
    entity: Option<String>,
    namespaces: Vec<(Option<String>, String)>,
    children: Vec<Option<SeenChild>>,
}

#[derive(Debug, PartialEq, Eq)]
struct SeenChild {
    kind: ElementKind,
    range: Range<usize>,
    name_end: usize,
    id: Option<Id>,
    inner_ids: Vec<Id>,
    declared: Vec<Option<String>>,
}

fn id_of(id: &IdAttr) -> Id {
    (id.value.to_string(), id.range.clone())
}

fn ours(text: &str, max_nodes: u32) -> Result<Seen, NotWellFormed> {
    let scanned = read(text, max_nodes)?;
    Ok(Seen {
        root_is_presence: scanned.root_is_presence,
        entity: scanned.entity,
        namespaces: scanned.namespaces,
        children: scanned
            .children
            .iter()
            .map(|c| {
                c.as_ref().map(|c| SeenChild {
                    kind: c.kind,
                    range: c.range.clone(),
                    name_end: c.name_end,
                    id: c.id.as_ref().map(id_of),
                    inner_ids: c.inner_ids.iter().map(id_of).collect(),
                    declared: c
                        .declared
                        .iter()
                        .map(|d| d.as_deref().map(str::to_owned))
                        .collect(),
                })
            })
            .collect(),
    })
}

fn name_of<'a>(node: Node<'a, '_>) -> Name<'a> {
    let tag = node.tag_name();
    Name {
        namespace: tag.namespace().filter(|ns| !ns.is_empty()),
        local: tag.name(),
    }
}

fn oracle_id(node: Node<'_, '_>) -> Option<Id> {
    if !name_of(node).has_typed_id() {
        return None;
    }
    let attr = node
        .attributes()
        .find(|a| a.name() == "id" && a.namespace().is_none())?;
    Some((attr.value().trim().to_owned(), attr.range_value()))
}

/// The start tag at `start` lexed plainly (roxmltree accepted it): where its name ends and
/// its attribute names, in order.
fn lex_start_tag(text: &str, start: usize) -> (usize, Vec<&str>) {
    let bytes = text.as_bytes();
    let stop = |b: u8| b.is_ascii_whitespace() || b == b'/' || b == b'>';
    let mut pos = start + 1;
    while pos < bytes.len() && !stop(bytes[pos]) {
        pos += 1;
    }
    let name_end = pos;
    let mut names = Vec::new();
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() || matches!(bytes[pos], b'/' | b'>') {
            break;
        }
        let name_start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'=' {
            pos += 1;
        }
        names.push(&text[name_start..pos]);
        while bytes[pos] != b'"' && bytes[pos] != b'\'' {
            pos += 1;
        }
        let quote = bytes[pos];
        pos += 1;
        while bytes[pos] != quote {
            pos += 1;
        }
        pos += 1;
    }
    (name_end, names)
}

/// The prefixes the `xmlns` attributes among `names` declare (None: the default namespace).
fn declarations(names: &[&str]) -> Vec<Option<String>> {
    names
        .iter()
        .filter_map(|name| match *name {
            "xmlns" => Some(None),
            name => name
                .strip_prefix("xmlns:")
                .map(|prefix| Some(prefix.to_owned())),
        })
        .collect()
}

fn oracle(text: &str, max_nodes: u32) -> Option<Seen> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: max_nodes,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).ok()?;
    let root = doc.root_element();
    let root_name = name_of(root);
    let children = root
        .children()
        .filter(Node::is_element)
        .map(|child| {
            let kind = name_of(child).kind()?;
            let (name_end, names) = lex_start_tag(text, child.range().start);
            Some(SeenChild {
                kind,
                range: child.range(),
                name_end,
                id: oracle_id(child),
                inner_ids: child
                    .descendants()
                    .skip(1)
                    .filter(Node::is_element)
                    .filter_map(oracle_id)
                    .collect(),
                declared: declarations(&names),
            })
        })
        .collect();
    Some(Seen {
        root_is_presence: root_name.namespace == Some(PIDF_NS) && root_name.local == "presence",
        entity: root
            .attributes()
            .find(|a| a.name() == "entity" && a.namespace().is_none())
            .map(|a| a.value().to_owned()),
        namespaces: root
            .namespaces()
            .filter(|ns| ns.name() != Some("xml"))
            .map(|ns| (ns.name().map(str::to_owned), ns.uri().to_owned()))
            .collect(),
        children,
    })
}

/// Malformed XML roxmltree accepts: a start tag with two default namespace declarations,
/// `p:xmlns` taken for a declaration, a name `:a` read as `a`, or a reference in the XML
/// declaration. The reader refuses these.
fn roxmltree_is_lenient(doc: &Document<'_>) -> bool {
    let text = doc.input_text();
    let declaration = text
        .trim_start_matches('\u{FEFF}')
        .strip_prefix("<?xml ")
        .and_then(|rest| rest.split("?>").next());
    declaration.is_some_and(|d| d.contains('&'))
        || text.contains("</:")
        || doc.descendants().filter(Node::is_element).any(|e| {
            // The names as written: a tag cut at its first `>` would miss those after an
            // attribute value containing one.
            let (name_end, names) = lex_start_tag(text, e.range().start);
            let defaults = names.iter().filter(|name| **name == "xmlns").count();
            defaults > 1
                || text[e.range().start + 1..name_end].starts_with(':')
                || names
                    .iter()
                    .any(|name| name.starts_with(':') || name.ends_with(":xmlns"))
        })
}

fn agree(text: &str, max_nodes: u32) -> Result<(), TestCaseError> {
    let expected = oracle(text, max_nodes);
    let got = ours(text, max_nodes);
    match (&expected, &got) {
        (Some(expected), Ok(got)) => prop_assert_eq!(expected, got, "{}", text),
        (None, Err(_)) => {}
        (None, Ok(_)) => prop_assert!(false, "accepted, roxmltree refuses: {text:?}"),
        (Some(_), Err(e)) => {
            let lenient = Document::parse(text).is_ok_and(|doc| roxmltree_is_lenient(&doc));
            prop_assert!(lenient, "refused ({e}), roxmltree accepts: {text:?}");
        }
    }
    Ok(())
}

const ROOT_START: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid""#;

/// One of `valid` most of the time, else one of `broken`.
fn mostly<T: Clone + std::fmt::Debug + 'static>(
    valid: &[T],
    broken: &[T],
) -> impl Strategy<Value = T> {
    prop_oneof![
        12 => prop::sample::select(valid.to_vec()),
        1 => prop::sample::select(broken.to_vec()),
    ]
}

/// Character data and markup inside an element.
fn text_piece() -> impl Strategy<Value = &'static str> {
    mostly(
        &[
            "hello",
            " ",
            "\n  ",
            "\r\n",
            "&amp;&lt;&gt;&quot;&apos;",
            "&#65;&#x1F600;",
            "]]",
            ">",
            "é\u{10000}",
            "<!-- note -->",
            "<!---->",
            "<?pi data?>",
            "<?pi?>",
            "<![CDATA[ <a> & ]]>",
            "<![CDATA[]]>",
        ],
        &[
            "&#0;",
            "&#xFFFE;",
            "&nbsp;",
            "& ",
            "]]>",
            "\u{1}",
            "\u{FFFF}",
            "<!-- a--b -->",
            "<!-- x --->",
            "<?xml version='1.0'?>",
            "<!DOCTYPE x>",
            "<!x>",
        ],
    )
}

/// A start tag's attributes: distinct names most of the time.
fn attributes() -> impl Strategy<Value = String> {
    let value = || {
        mostly(
            &[
                "x1",
                " spaced\tid\n",
                "a&amp;b&#x41;",
                "a\r\nb",
                "",
                "urn:ietf:params:xml:ns:pidf",
                "urn:ietf:params:xml:ns:pidf:rpid",
                "urn:ietf:params:xml:ns:pidf:data-model",
                "urn:other",
            ],
            &[
                "bad&x;",
                "lt<",
                "http://www.w3.org/XML/1998/namespace",
                "http://www.w3.org/2000/xmlns/",
            ],
        )
    };
    let names = mostly(
        &[
            vec!["id"],
            vec!["id", "xml:lang"],
            vec!["dm:id", "other"],
            vec!["xmlns"],
            vec!["xmlns:dm", "id"],
            vec!["xmlns:q", "q:id"],
            vec!["xmlns", "xmlns:rpid", "id"],
            vec![],
        ],
        &[
            vec!["id", "id"],
            vec!["xmlns", "xmlns"],
            vec!["q:id"],
            vec!["1bad"],
            vec!["xmlns:xml"],
            vec!["xmlns:xmlns"],
            vec!["entity"],
        ],
    );
    names.prop_flat_map(move |names| {
        let values = prop::collection::vec((value(), prop::bool::ANY), names.len());
        values.prop_map(move |values| {
            names
                .iter()
                .zip(values)
                .map(|(name, (value, single))| {
                    if single {
                        format!(" {name}='{}'", value.replace('\'', "&apos;"))
                    } else {
                        format!(" {name}=\"{value}\"")
                    }
                })
                .collect::<String>()
        })
    })
}

fn element_name() -> impl Strategy<Value = &'static str> {
    mostly(
        &[
            "tuple",
            "note",
            "status",
            "basic",
            "dm:person",
            "dm:device",
            "dm:deviceID",
            "rpid:activities",
            "rpid:away",
            "x",
        ],
        &["q:ext", "xml:x"],
    )
}

/// An element with nested content, as text.
fn element() -> impl Strategy<Value = String> {
    let leaf = (element_name(), attributes()).prop_map(|(name, attrs)| format!("<{name}{attrs}/>"));
    leaf.prop_recursive(4, 24, 4, |inner| {
        (
            element_name(),
            attributes(),
            prop::collection::vec(
                prop_oneof![inner, text_piece().prop_map(str::to_owned)],
                0..4,
            ),
        )
            .prop_map(|(name, attrs, content)| {
                format!("<{name}{attrs}>{}</{name}>", content.concat())
            })
    })
}

/// What may stand before and after the root element.
fn misc() -> impl Strategy<Value = &'static str> {
    mostly(
        &[" ", "\n", "<!-- c -->", "<?pi x?>"],
        &[
            "text",
            "<!DOCTYPE x>",
            "<?xml version='1.0'?>",
            "<x/>",
            "<!-- a--b -->",
        ],
    )
}

fn document() -> impl Strategy<Value = String> {
    (
        mostly(
            &[
                "",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "\u{FEFF}<?xml version='1.0' standalone='yes' ?>",
            ],
            &[
                "<?xml encoding='UTF-8'?>",
                "<?xml version='1.0'encoding='UTF-8'?>",
                " <?xml version='1.0'?>",
            ],
        ),
        prop::collection::vec(misc(), 0..2),
        mostly(
            &["", " xml:lang='en'", " xmlns:q='urn:q' id='p'"],
            &[" xmlns='urn:other'", " entity='twice'", " q:x='1'"],
        ),
        prop::collection::vec(
            prop_oneof![3 => element(), 1 => text_piece().prop_map(str::to_owned)],
            0..6,
        ),
        prop::collection::vec(misc(), 0..2),
    )
        .prop_map(|(declaration, before, attrs, content, after)| {
            format!(
                "{declaration}{}{ROOT_START} entity=\"sip:a%40b\"{attrs}>{}</presence>{}",
                before.concat(),
                content.concat(),
                after.concat()
            )
        })
}

/// Random edits of a document: a character removed, or one of XML's delimiters inserted.
fn mutated() -> impl Strategy<Value = String> {
    (
        document(),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::option::of(prop::sample::select(vec![
                    '<', '>', '&', ';', '"', '\'', '=', '/', ':', '!', '?', '-', ']', '#', ' ',
                    'x', '\u{0}', 'é',
                ])),
            ),
            0..3,
        ),
    )
        .prop_map(|(mut text, edits)| {
            for (at, insert) in edits {
                let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                if boundaries.is_empty() {
                    break;
                }
                let pos = boundaries[at.index(boundaries.len())];
                match insert {
                    Some(c) => text.insert(pos, c),
                    None => {
                        text.remove(pos);
                    }
                }
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn generated_documents_read_as_roxmltree_reads_them(text in document()) {
        agree(&text, 100_000)?;
    }

    #[test]
    fn broken_documents_are_refused_as_roxmltree_refuses_them(text in mutated()) {
        agree(&text, 100_000)?;
    }

    #[test]
    fn the_node_limit_counts_as_roxmltree_counts(text in document(), limit in 1u32..40) {
        agree(&text, limit)?;
    }
}

#[test]
fn a_blink_publication_and_the_corpus_read_as_roxmltree_reads_them() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/pidf-manipulation"
    );
    let mut read = 0;
    for sub in ["valid", "invalid"] {
        let Ok(entries) = std::fs::read_dir(format!("{dir}/{sub}")) else {
            continue;
        };
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            agree(&text, 100_000).unwrap_or_else(|e| panic!("{:?}: {e}", entry.path()));
            read += 1;
        }
    }
    assert!(read > 0, "no corpus under {dir}");
}

#[test]
fn where_reading_stops_is_said() {
    let refused = |text: &str| read(text, 100).err().map(|e| e.to_string());
    assert_eq!(
        refused("<a><b></a>").as_deref(),
        Some("end tag does not match the start tag at byte 6")
    );
    assert_eq!(
        refused("<a>&nbsp;</a>").as_deref(),
        Some("unknown entity (no DTD is read) at byte 3")
    );
    assert_eq!(
        refused("<!DOCTYPE a><a/>").as_deref(),
        Some("a DTD is not accepted at byte 0")
    );
    assert_eq!(refused("").as_deref(), Some("no root element at byte 0"));
    assert_eq!(
        refused("<a/><b/>").as_deref(),
        Some("content after the root element at byte 4")
    );
    assert!(refused("<a/>").is_none());
}

#[test]
fn text_cdata_and_references_in_a_row_count_as_one_node() {
    // The document, <?pi?>, <!--c-->, presence, "a" CDATA "&amp;c", x, "d", <!--e-->, <?f?>,
    // "g", <!--h-->: eleven nodes.
    let text = "<?pi?><!--c--><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'>a<![CDATA[b]]>&amp;c<x/>d<!--e--><?f?>g</presence><!--h-->";
    assert!(read(text, 11).is_ok());
    assert_eq!(
        read(text, 10).err().map(|e| e.reason),
        Some("too many nodes")
    );
    for limit in 1..20 {
        agree(text, limit).unwrap_or_else(|e| panic!("limit {limit}: {e}"));
    }
}
