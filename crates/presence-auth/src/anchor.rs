//! OMA `external-list` anchors: XCAP URIs (RFC 4825 §6) whose node selector picks a
//! `<list>` of the presentity's resource-lists document (RFC 4826 §3.2) by name, e.g.
//! `https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22oma_allowedlist%22%5D`.

use percent_encoding::percent_decode_str;

/// A parsed external-list anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAnchor {
    /// The document part of the XCAP URI, before `/~~/`, as written in the anchor.
    pub document: String,
    /// The `name` of each `<list>` step from the outermost inward (nested lists are allowed).
    pub lists: Vec<String>,
}

/// Longest anchor parsed; a longer one is not a list this server stores.
const MAX_ANCHOR_BYTES: usize = 8 * 1024;

impl ListAnchor {
    /// Parses an anchor whose `anc` value was already percent-decoded once (as
    /// [`simple_payloads::common_policy`] does). The node selector is percent-decoded again,
    /// because an XCAP URI carries it escaped (`list%5B@name=%22x%22%5D`). Only the form
    /// `[prefix:]resource-lists/[prefix:]list[@name="…"]/…` is understood.
    pub fn parse(anchor: &str) -> Option<ListAnchor> {
        if anchor.len() > MAX_ANCHOR_BYTES {
            return None;
        }
        let separator = anchor.find("/~~/")?;
        let document = anchor[..separator].to_owned();
        let selector = percent_decode_str(&anchor[separator + 4..]).decode_utf8_lossy();
        let mut steps = split_steps(&selector)?.into_iter();
        if local_name(steps.next()?) != "resource-lists" {
            return None;
        }
        let lists = steps.map(list_name).collect::<Option<Vec<String>>>()?;
        if lists.is_empty() {
            return None;
        }
        Some(ListAnchor { document, lists })
    }
}

/// Splits a node selector at the `/` that are outside predicates and quoted strings.
fn split_steps(selector: &str) -> Option<Vec<&str>> {
    let mut steps = Vec::new();
    let mut quote = None;
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.checked_sub(1)?,
            (None, '/') if depth == 0 => {
                steps.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() || depth != 0 {
        return None;
    }
    steps.push(&selector[start..]);
    Some(steps)
}

/// The step's element name without a namespace prefix or predicate.
fn local_name(step: &str) -> &str {
    let name = step.split('[').next().unwrap_or_default();
    name.rsplit(':').next().unwrap_or_default()
}

/// The name in a `list[@name="…"]` step.
fn list_name(step: &str) -> Option<String> {
    if local_name(step) != "list" {
        return None;
    }
    let predicate = step[step.find('[')?..]
        .strip_prefix('[')?
        .strip_suffix(']')?;
    let value = predicate
        .strip_prefix("@name")?
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = value[1..].strip_suffix(quote)?;
    if inner.contains(quote) {
        return None;
    }
    Some(inner.to_owned())
}

#[cfg(test)]
mod tests {
    use super::ListAnchor;

    const DOC: &str =
        "https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index";

    fn lists(anchor: &str) -> Option<Vec<String>> {
        ListAnchor::parse(anchor).map(|a| a.lists)
    }

    #[test]
    fn reads_blinks_decoded_anchor() {
        let anchor = ListAnchor::parse(&format!(
            "{DOC}/~~/resource-lists/list[@name=\"oma_grantedcontacts\"]"
        ))
        .unwrap();
        assert_eq!(anchor.document, DOC);
        assert_eq!(anchor.lists, ["oma_grantedcontacts"]);
    }

    #[test]
    fn reads_escaped_selectors_prefixes_nesting_and_quotes() {
        assert_eq!(
            lists(&format!(
                "{DOC}/~~/resource-lists/list%5B@name=%22oma_allowedlist%22%5D"
            )),
            Some(vec!["oma_allowedlist".into()])
        );
        assert_eq!(
            lists(&format!(
                "{DOC}/~~/rl:resource-lists/rl:list[@name='a/b']/list[@name = \"c]d\"]"
            )),
            Some(vec!["a/b".into(), "c]d".into()])
        );
    }

    #[test]
    fn refuses_other_selectors() {
        for selector in [
            "resource-lists",
            "resource-lists/list[1]",
            "resource-lists/list[@id=\"x\"]",
            "resource-lists/entry[@uri=\"x\"]",
            "rls-services/list[@name=\"x\"]",
            "resource-lists/list[@name=\"x\"",
            "resource-lists/list[@name=\"x]",
            "resource-lists/list[@name=\"x\"]]",
        ] {
            assert_eq!(lists(&format!("{DOC}/~~/{selector}")), None, "{selector}");
        }
        assert_eq!(lists(DOC), None);
        assert_eq!(
            lists(&format!(
                "{DOC}/~~/resource-lists/list[@name=\"{}\"]",
                "x".repeat(9000)
            )),
            None
        );
    }
}
