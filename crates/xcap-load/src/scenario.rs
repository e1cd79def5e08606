//! The seeded document and what each scenario sends.
//!
//! The document is shaped like the resource-lists document Blink keeps (blink-compat §1.2):
//! its OMA and sipsimple lists, `rl:` prefixed, percent-encoded `anyURI`s, external
//! anchors into the user's own document and one addressbook contact; about 2.5 KB with 21
//! entries, so document operations move a realistic amount of XML.

use bytes::Bytes;
use hyper::Method;

use crate::cli::{Account, Scenario};
use crate::client::{Call, Client};

const RESOURCE_LISTS: &str = "application/resource-lists+xml";
const ELEMENT: &str = "application/xcap-el+xml";
const RL_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// The list whose first entry the element scenarios read and replace.
const RLS_LIST: &str = "sipsimple_presence_rls";

/// One client's targets and the state its scenario carries between requests.
pub struct Work {
    document_path: String,
    element_path: String,
    /// Two versions of the document and of the entry, alternated so every PUT changes
    /// something.
    documents: [Bytes; 2],
    elements: [Bytes; 2],
    turn: usize,
    etag: Option<String>,
}

/// What one measured operation ended with.
pub struct Outcome {
    pub status: u16,
    /// A 412 on a document PUT was followed by a GET for the current ETag.
    pub refreshed: bool,
}

impl Work {
    pub fn new(root_url: &str, account: &Account) -> Work {
        let document_path = format!(
            "resource-lists/users/sip:{}@{}/index",
            account.user, account.domain
        );
        let element_path = format!(
            "{document_path}/~~/resource-lists/list%5B@name=%22{RLS_LIST}%22%5D/entry%5B1%5D"
        );
        let contact = contact_uri(1, &account.domain);
        Work {
            documents: [0, 1].map(|revision| Bytes::from(document(root_url, account, revision))),
            elements: [
                format!(r#"<entry xmlns="{RL_NS}" uri="{contact}"/>"#),
                format!(
                    r#"<entry xmlns="{RL_NS}" uri="{contact}"><display-name>Contact 1</display-name></entry>"#
                ),
            ]
            .map(Bytes::from),
            document_path,
            element_path,
            turn: 0,
            etag: None,
        }
    }

    /// Puts the document in place unconditionally, whatever an earlier run left.
    pub async fn seed(&mut self, client: &mut Client) -> Result<(), String> {
        let body = self.documents[0].clone();
        let reply = client
            .send(&Call {
                method: Method::PUT,
                path: &self.document_path,
                if_match: None,
                body: Some((RESOURCE_LISTS, body)),
            })
            .await?;
        if !matches!(reply.status, 200 | 201) {
            return Err(format!(
                "seeding {}: status {}",
                self.document_path, reply.status
            ));
        }
        self.etag = reply.etag;
        Ok(())
    }

    pub async fn step(
        &mut self,
        client: &mut Client,
        scenario: Scenario,
    ) -> Result<Outcome, String> {
        self.turn ^= 1;
        let (method, path, body) = match scenario {
            Scenario::GetDoc => (Method::GET, &self.document_path, None),
            Scenario::GetEl => (Method::GET, &self.element_path, None),
            Scenario::PutDoc => (
                Method::PUT,
                &self.document_path,
                Some((RESOURCE_LISTS, self.documents[self.turn].clone())),
            ),
            Scenario::PutEl => (
                Method::PUT,
                &self.element_path,
                Some((ELEMENT, self.elements[self.turn].clone())),
            ),
        };
        let if_match = match scenario {
            Scenario::PutDoc => self.etag.as_deref(),
            _ => None,
        };
        let reply = client
            .send(&Call {
                method,
                path,
                if_match,
                body,
            })
            .await?;
        let mut refreshed = false;
        if scenario == Scenario::PutDoc {
            match reply.status {
                200 => self.etag = reply.etag,
                412 => {
                    let current = client
                        .send(&Call {
                            method: Method::GET,
                            path: &self.document_path,
                            if_match: None,
                            body: None,
                        })
                        .await?;
                    self.etag = current.etag;
                    refreshed = true;
                }
                _ => {}
            }
        }
        Ok(Outcome {
            status: reply.status,
            refreshed,
        })
    }
}

/// Whether `status` is what `scenario` should get; a 412 is expected only where the
/// client recovers from it.
pub fn expected(scenario: Scenario, status: u16) -> bool {
    status == 200 || (scenario == Scenario::PutDoc && status == 412)
}

fn contact_uri(n: u32, domain: &str) -> String {
    format!("sip%3Acontact{n}%40{domain}")
}

/// Blink's document for `account`; `revision` changes the contact's name only.
pub fn document(root_url: &str, account: &Account, revision: u32) -> String {
    let domain = &account.domain;
    let entries = |range: std::ops::RangeInclusive<u32>| -> String {
        range
            .map(|n| format!(r#"<rl:entry uri="{}"/>"#, contact_uri(n, domain)))
            .collect()
    };
    // Blink writes absolute anchors percent-encoded, pointing at its own lists.
    let anchor = |list: &str| {
        let encoded_root = root_url.replacen("://", "%3A//", 1);
        format!(
            r#"<rl:external anchor="{encoded_root}/resource-lists/users/sip%3A{}%40{domain}/index/~~/resource-lists/list%5B%40name%3D%22{list}%22%5D"/>"#,
            account.user
        )
    };
    let externals: String = [
        "oma_buddylist",
        "oma_grantedcontacts",
        "oma_blockedcontacts",
    ]
    .map(anchor)
    .join("\n    ");
    format!(
        r#"<?xml version='1.0' encoding='UTF-8'?>
<rl:resource-lists xmlns:rl="{RL_NS}"
    xmlns:addressbook="urn:ag-projects:xml:ns:addressbook"
    xmlns:blink="urn:ag-projects:blink:xml:ns:addressbook">
  <rl:list name="oma_buddylist"/>
  <rl:list name="oma_grantedcontacts">{granted}</rl:list>
  <rl:list name="oma_blockedcontacts"><rl:entry uri="sip%3Aspam%40example.net"/></rl:list>
  <rl:list name="oma_allcontacts">
    {externals}
  </rl:list>
  <rl:list name="dialog_grantedcontacts"/><rl:list name="dialog_blockedcontacts"/>
  <rl:list name="{RLS_LIST}">{rls}</rl:list>
  <rl:list name="sipsimple_dialog_rls"/>
  <rl:list name="sipsimple_addressbook">
    <addressbook:contact id="id1715772411000001123456">
      <addressbook:name>Contact 1 (revision {revision})</addressbook:name>
      <addressbook:uris default="id1715772411000002654321">
        <addressbook:uri id="id1715772411000002654321" uri="{contact}" type="SIP"><blink:attributes/></addressbook:uri>
      </addressbook:uris>
      <blink:attributes/>
    </addressbook:contact>
  </rl:list>
</rl:resource-lists>
"#,
        granted = entries(1..=10),
        rls = entries(1..=10),
        contact = contact_uri(1, domain),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_document_is_blink_sized_well_formed_and_varies() {
        let account = Account {
            user: "u7".into(),
            domain: "bench.test".into(),
            password: "pw7".into(),
        };
        let text = document("http://127.0.0.1:8099/xcap-root", &account, 0);
        let doc = roxmltree::Document::parse(&text).unwrap();
        let in_rl = |name: &str| {
            doc.descendants()
                .filter(|n| n.tag_name().namespace() == Some(RL_NS) && n.tag_name().name() == name)
                .count()
        };
        assert_eq!(
            (in_rl("list"), in_rl("entry"), in_rl("external")),
            (9, 21, 3)
        );
        assert!((2000..2700).contains(&text.len()), "{} bytes", text.len());
        assert!(text.contains(
            r#"anchor="http%3A//127.0.0.1:8099/xcap-root/resource-lists/users/sip%3Au7%40bench.test/index/~~/resource-lists/list%5B%40name%3D%22oma_buddylist%22%5D""#
        ));
        let rls = doc
            .descendants()
            .find(|n| n.attribute("name") == Some(RLS_LIST))
            .unwrap();
        let first = rls.first_element_child().unwrap();
        assert_eq!(first.attribute("uri"), Some("sip%3Acontact1%40bench.test"));
        assert_ne!(
            text,
            document("http://127.0.0.1:8099/xcap-root", &account, 1)
        );

        let work = Work::new("http://127.0.0.1:8099/xcap-root", &account);
        assert_eq!(
            work.element_path,
            "resource-lists/users/sip:u7@bench.test/index/~~/resource-lists/\
             list%5B@name=%22sipsimple_presence_rls%22%5D/entry%5B1%5D"
        );
        for element in &work.elements {
            let text = std::str::from_utf8(element).unwrap();
            let entry = roxmltree::Document::parse(text).unwrap();
            let root = entry.root_element();
            assert_eq!(
                (root.tag_name().namespace(), root.tag_name().name()),
                (Some(RL_NS), "entry")
            );
            assert_eq!(root.attribute("uri"), first.attribute("uri"));
        }
    }

    #[test]
    fn only_200_and_a_recovered_412_are_expected() {
        assert!(expected(Scenario::GetEl, 200));
        assert!(expected(Scenario::PutDoc, 412));
        assert!(!expected(Scenario::PutEl, 412));
        assert!(!expected(Scenario::PutDoc, 201));
        assert!(!expected(Scenario::GetDoc, 401));
    }
}
