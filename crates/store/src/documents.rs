//! XCAP document storage (RFC 4825 §6.2 document tree, §7.11/§8.5 ETags): the
//! [`DocumentStore`] trait the XCAP server is written against, and its SQLite implementation
//! on [`Store`].
//!
//! The trait is object-safe (boxed futures) so the server can hold an
//! `Arc<dyn DocumentStore>` and a PostgreSQL backend can be added beside SQLite without
//! touching the XCAP logic. Every write is a compare-and-swap on the ETag the caller read:
//! the ETag check, the write and the maintenance of the cross-document unique keys happen in
//! one transaction, so two writers can never both succeed against the same ETag.

use std::future::Future;
use std::pin::Pin;

use sqlx::Row;

use crate::{begin, Store, StoreError};

/// A boxed, sendable future: what the object-safe [`DocumentStore`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which document: application usage, owner and path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentKey {
    /// Application unique ID, e.g. `resource-lists`.
    pub auid: String,
    /// The owner's normalised XUI (`sip:alice@example.com`), or empty for the global tree.
    pub owner: String,
    /// Path below the tree, e.g. `index` or `oma_status-icon/index`.
    pub path: String,
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// The document bytes exactly as last written.
    pub content: Vec<u8>,
    /// Strong, quoted ETag.
    pub etag: String,
    /// Unix seconds of the last write.
    pub modified_at: i64,
}

/// One entry of a user's document listing (for the OMA xcap-directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    pub key: DocumentKey,
    pub etag: String,
    pub modified_at: i64,
    /// Content length in bytes.
    pub size: u64,
}

/// The new state of a document for a conditional write.
#[derive(Debug, Clone, Copy)]
pub struct DocumentWrite<'a> {
    pub content: &'a [u8],
    pub etag: &'a str,
    /// Values this document claims in the usage-wide unique-key space (e.g. rls-services
    /// service URIs). They replace the document's previous claims; duplicates are ignored.
    pub unique_keys: &'a [String],
}

/// Result of [`DocumentStore::put_document_if`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored; `previous_etag` is `None` when the document was created.
    Written { previous_etag: Option<String> },
    /// The stored ETag did not match the expectation; nothing was written.
    Conflict { current_etag: Option<String> },
    /// Another document of the same usage already claims these unique keys; nothing was
    /// written.
    KeyTaken { values: Vec<String> },
}

/// Result of [`DocumentStore::delete_document_if`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Removed, with its last ETag.
    Removed { previous_etag: String },
    /// The document is absent or its ETag did not match; nothing was removed.
    Conflict { current_etag: Option<String> },
}

/// Storage of XCAP documents. `expected` arguments: `None` performs the operation
/// unconditionally, `Some(None)` requires the document to be absent, `Some(Some(etag))`
/// requires exactly that stored ETag.
pub trait DocumentStore: Send + Sync {
    fn get_document<'a>(
        &'a self,
        key: &'a DocumentKey,
    ) -> BoxFuture<'a, Result<Option<StoredDocument>, StoreError>>;

    /// Every document of `owner` (all usages), ordered by AUID, then path.
    fn list_documents<'a>(
        &'a self,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DocumentInfo>, StoreError>>;

    /// Create or replace a document if its current ETag is as `expected`.
    fn put_document_if<'a>(
        &'a self,
        key: &'a DocumentKey,
        expected: Option<Option<&'a str>>,
        write: DocumentWrite<'a>,
    ) -> BoxFuture<'a, Result<WriteOutcome, StoreError>>;

    /// Remove a document (and its unique-key claims) if its current ETag is as `expected`.
    fn delete_document_if<'a>(
        &'a self,
        key: &'a DocumentKey,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemoveOutcome, StoreError>>;

    /// Which documents of usage `auid` claim any of `values`, as `(value, document)` pairs.
    fn unique_key_holders<'a>(
        &'a self,
        auid: &'a str,
        values: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, DocumentKey)>, StoreError>>;
}

impl DocumentStore for Store {
    fn get_document<'a>(
        &'a self,
        key: &'a DocumentKey,
    ) -> BoxFuture<'a, Result<Option<StoredDocument>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT content, etag, modified_at FROM documents
                 WHERE auid = ? AND owner = ? AND path = ?",
            )
            .bind(&key.auid)
            .bind(&key.owner)
            .bind(&key.path)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|row| {
                Ok(StoredDocument {
                    content: row.try_get("content")?,
                    etag: row.try_get("etag")?,
                    modified_at: row.try_get("modified_at")?,
                })
            })
            .transpose()
        })
    }

    fn list_documents<'a>(
        &'a self,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DocumentInfo>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT auid, path, etag, modified_at, length(content) AS size FROM documents
                 WHERE owner = ? ORDER BY auid, path",
            )
            .bind(owner)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let size: i64 = row.try_get("size")?;
                    Ok(DocumentInfo {
                        key: DocumentKey {
                            auid: row.try_get("auid")?,
                            owner: owner.to_owned(),
                            path: row.try_get("path")?,
                        },
                        etag: row.try_get("etag")?,
                        modified_at: row.try_get("modified_at")?,
                        size: u64::try_from(size).unwrap_or(0),
                    })
                })
                .collect()
        })
    }

    fn put_document_if<'a>(
        &'a self,
        key: &'a DocumentKey,
        expected: Option<Option<&'a str>>,
        write: DocumentWrite<'a>,
    ) -> BoxFuture<'a, Result<WriteOutcome, StoreError>> {
        Box::pin(async move {
            // Documents are user data: they go through the synchronous=FULL connection.
            let mut tx = begin(&self.durable).await?;
            let current = current_etag(&mut tx, key).await?;
            if expected.is_some_and(|e| e != current.as_deref()) {
                return Ok(WriteOutcome::Conflict {
                    current_etag: current,
                });
            }
            sqlx::query(
                "INSERT INTO documents (auid, owner, path, content, etag, modified_at)
                 VALUES (?, ?, ?, ?, ?, CAST(strftime('%s', 'now') AS INTEGER))
                 ON CONFLICT (auid, owner, path) DO UPDATE SET
                     content = excluded.content, etag = excluded.etag,
                     modified_at = excluded.modified_at",
            )
            .bind(&key.auid)
            .bind(&key.owner)
            .bind(&key.path)
            .bind(write.content)
            .bind(write.etag)
            .execute(&mut *tx)
            .await?;
            remove_unique_keys(&mut tx, key).await?;
            let mut taken = Vec::new();
            for value in write.unique_keys {
                let claimed = sqlx::query(
                    "INSERT INTO document_unique_keys (auid, value, owner, path) VALUES (?, ?, ?, ?)
                     ON CONFLICT (auid, value) DO NOTHING",
                )
                .bind(&key.auid)
                .bind(value)
                .bind(&key.owner)
                .bind(&key.path)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 && !taken.contains(value) {
                    // A repeat inside this same document is not a conflict.
                    let holder: Option<(String, String)> = sqlx::query_as(
                        "SELECT owner, path FROM document_unique_keys WHERE auid = ? AND value = ?",
                    )
                    .bind(&key.auid)
                    .bind(value)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if holder.is_some_and(|(o, p)| o != key.owner || p != key.path) {
                        taken.push(value.clone());
                    }
                }
            }
            if !taken.is_empty() {
                return Ok(WriteOutcome::KeyTaken { values: taken });
            }
            tx.commit().await?;
            Ok(WriteOutcome::Written {
                previous_etag: current,
            })
        })
    }

    fn delete_document_if<'a>(
        &'a self,
        key: &'a DocumentKey,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemoveOutcome, StoreError>> {
        Box::pin(async move {
            let mut tx = begin(&self.durable).await?;
            let current = current_etag(&mut tx, key).await?;
            let previous_etag = match current {
                Some(c) if expected.is_none_or(|e| e == c) => c,
                other => {
                    return Ok(RemoveOutcome::Conflict {
                        current_etag: other,
                    })
                }
            };
            sqlx::query("DELETE FROM documents WHERE auid = ? AND owner = ? AND path = ?")
                .bind(&key.auid)
                .bind(&key.owner)
                .bind(&key.path)
                .execute(&mut *tx)
                .await?;
            remove_unique_keys(&mut tx, key).await?;
            tx.commit().await?;
            Ok(RemoveOutcome::Removed { previous_etag })
        })
    }

    fn unique_key_holders<'a>(
        &'a self,
        auid: &'a str,
        values: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, DocumentKey)>, StoreError>> {
        Box::pin(async move {
            let mut holders = Vec::new();
            for value in values {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT owner, path FROM document_unique_keys WHERE auid = ? AND value = ?",
                )
                .bind(auid)
                .bind(value)
                .fetch_optional(&self.pool)
                .await?;
                if let Some((owner, path)) = row {
                    let key = DocumentKey {
                        auid: auid.to_owned(),
                        owner,
                        path,
                    };
                    holders.push((value.clone(), key));
                }
            }
            Ok(holders)
        })
    }
}

async fn current_etag(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    key: &DocumentKey,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT etag FROM documents WHERE auid = ? AND owner = ? AND path = ?")
        .bind(&key.auid)
        .bind(&key.owner)
        .bind(&key.path)
        .fetch_optional(&mut **tx)
        .await
}

async fn remove_unique_keys(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    key: &DocumentKey,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM document_unique_keys WHERE auid = ? AND owner = ? AND path = ?")
        .bind(&key.auid)
        .bind(&key.owner)
        .bind(&key.path)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn key(owner: &str, auid: &str) -> DocumentKey {
        DocumentKey {
            auid: auid.to_owned(),
            owner: owner.to_owned(),
            path: "index".to_owned(),
        }
    }

    fn write<'a>(content: &'a [u8], etag: &'a str, keys: &'a [String]) -> DocumentWrite<'a> {
        DocumentWrite {
            content,
            etag,
            unique_keys: keys,
        }
    }

    #[tokio::test]
    async fn conditional_put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let k = key("sip:alice@example.com", "resource-lists");
        assert_eq!(store.get_document(&k).await.unwrap(), None);
        // Creation with "must be absent".
        let out = store
            .put_document_if(&k, Some(None), write(b"<a/>", "\"1\"", &[]))
            .await
            .unwrap();
        assert_eq!(
            out,
            WriteOutcome::Written {
                previous_etag: None
            }
        );
        // A second "must be absent" loses.
        let out = store
            .put_document_if(&k, Some(None), write(b"<b/>", "\"2\"", &[]))
            .await
            .unwrap();
        assert_eq!(
            out,
            WriteOutcome::Conflict {
                current_etag: Some("\"1\"".into())
            }
        );
        let out = store
            .put_document_if(&k, Some(Some("\"1\"")), write(b"<b/>", "\"2\"", &[]))
            .await
            .unwrap();
        assert_eq!(
            out,
            WriteOutcome::Written {
                previous_etag: Some("\"1\"".into())
            }
        );
        let doc = store.get_document(&k).await.unwrap().unwrap();
        assert_eq!(
            (doc.content.as_slice(), doc.etag.as_str()),
            (&b"<b/>"[..], "\"2\"")
        );
        assert!(doc.modified_at > 1_600_000_000);

        let other = key("sip:alice@example.com", "pres-rules");
        store
            .put_document_if(&other, None, write(b"<r/>", "\"3\"", &[]))
            .await
            .unwrap();
        store
            .put_document_if(
                &key("sip:bob@example.com", "x"),
                None,
                write(b"<x/>", "\"4\"", &[]),
            )
            .await
            .unwrap();
        let listed = store.list_documents("sip:alice@example.com").await.unwrap();
        let names: Vec<_> = listed
            .iter()
            .map(|d| (d.key.auid.as_str(), d.etag.as_str(), d.size))
            .collect();
        assert_eq!(
            names,
            [("pres-rules", "\"3\"", 4), ("resource-lists", "\"2\"", 4)]
        );

        assert_eq!(
            store.delete_document_if(&k, Some("\"1\"")).await.unwrap(),
            RemoveOutcome::Conflict {
                current_etag: Some("\"2\"".into())
            }
        );
        assert_eq!(
            store.delete_document_if(&k, Some("\"2\"")).await.unwrap(),
            RemoveOutcome::Removed {
                previous_etag: "\"2\"".into()
            }
        );
        assert_eq!(
            store.delete_document_if(&k, None).await.unwrap(),
            RemoveOutcome::Conflict { current_etag: None }
        );
    }

    #[tokio::test]
    async fn unique_keys_are_exclusive_across_owners_and_released_on_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let alice = key("sip:alice@example.com", "rls-services");
        let bob = key("sip:bob@example.com", "rls-services");
        let svc = vec![
            "sip:s@example.com".to_owned(),
            "sip:s@example.com".to_owned(),
        ];
        let out = store
            .put_document_if(&alice, None, write(b"<a/>", "\"a\"", &svc))
            .await
            .unwrap();
        assert!(matches!(out, WriteOutcome::Written { .. }));
        // Rewriting the same document with the same claim is fine.
        let out = store
            .put_document_if(&alice, None, write(b"<a2/>", "\"a2\"", &svc))
            .await
            .unwrap();
        assert!(matches!(out, WriteOutcome::Written { .. }));
        let out = store
            .put_document_if(&bob, None, write(b"<b/>", "\"b\"", &svc[..1]))
            .await
            .unwrap();
        assert_eq!(
            out,
            WriteOutcome::KeyTaken {
                values: vec!["sip:s@example.com".into()]
            }
        );
        assert_eq!(store.get_document(&bob).await.unwrap(), None, "rolled back");
        let holders = store
            .unique_key_holders("rls-services", &svc[..1])
            .await
            .unwrap();
        assert_eq!(
            holders,
            vec![("sip:s@example.com".to_owned(), alice.clone())]
        );
        store.delete_document_if(&alice, None).await.unwrap();
        let out = store
            .put_document_if(&bob, None, write(b"<b/>", "\"b\"", &svc[..1]))
            .await
            .unwrap();
        assert!(matches!(out, WriteOutcome::Written { .. }));
    }

    /// Two handles on the same database (as two processes or nodes would have) race
    /// conditional writes against one ETag: exactly one wins each round.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_writers_on_two_handles_never_both_win() {
        let dir = tempfile::tempdir().unwrap();
        let a: Arc<dyn DocumentStore> = Arc::new(Store::open(dir.path()).await.unwrap());
        let b: Arc<dyn DocumentStore> = Arc::new(Store::open(dir.path()).await.unwrap());
        let k = key("sip:alice@example.com", "resource-lists");
        a.put_document_if(&k, None, write(b"0", "\"0\"", &[]))
            .await
            .unwrap();
        let mut etag = "\"0\"".to_owned();
        for round in 1..=20 {
            let mut tasks = Vec::new();
            for (i, handle) in [a.clone(), b.clone(), a.clone(), b.clone()]
                .into_iter()
                .enumerate()
            {
                let (k, expected) = (k.clone(), etag.clone());
                tasks.push(tokio::spawn(async move {
                    let content = format!("{round}-{i}");
                    let new_etag = format!("\"{content}\"");
                    let out = handle
                        .put_document_if(
                            &k,
                            Some(Some(&expected)),
                            write(content.as_bytes(), &new_etag, &[]),
                        )
                        .await
                        .unwrap();
                    matches!(out, WriteOutcome::Written { .. }).then_some(new_etag)
                }));
            }
            let mut winners = Vec::new();
            for task in tasks {
                winners.extend(task.await.unwrap());
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            etag = winners.remove(0);
            assert_eq!(b.get_document(&k).await.unwrap().unwrap().etag, etag);
        }
    }
}
