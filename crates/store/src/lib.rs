//! Avail's persistent state in SQLite: accounts (digest HA1 values, RFC 7616 §3.4.2 and §5.2:
//! never passwords), registrar bindings (RFC 3261 §10.3, with RFC 5627 GRUU and RFC 3327
//! Path data), server secrets, and XCAP documents behind the [`DocumentStore`] trait
//! (RFC 4825, see [`documents`]), and the presence agent's publications and subscriptions as
//! opaque rows ([`PresenceRow`]) so they survive a restart.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction, so a crash leaves either the old
//! or the new state. The database is in WAL mode; accounts and secrets go through a
//! connection with `synchronous=FULL` (a committed account survives power loss), bindings
//! through connections with `synchronous=NORMAL` (a power loss may lose the last refreshes,
//! which clients repeat anyway, and REGISTER traffic is not slowed by an fsync each).

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

pub mod documents;

pub use documents::{
    BoxFuture, DocumentInfo, DocumentKey, DocumentStore, DocumentWrite, RemoveOutcome,
    StoredDocument, WriteOutcome,
};

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "avail.db";

/// Ordered schema migrations; the version of each is its position plus one.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_documents.sql"),
    include_str!("../migrations/0003_presence_state.sql"),
];

/// How long a connection waits for another writer (this process or another) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows written by one statement of [`Store::save_presence_state`]; four parameters each
/// stay far below SQLite's limit on bound parameters.
const ROWS_PER_STATEMENT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    AlreadyExists,
    #[error("not found")]
    NotFound,
    #[error("invalid data: {0}")]
    Invalid(String),
    #[error("cannot create data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub user: String,
    pub domain: String,
    /// Lower-case hex `MD5(user:domain:password)`.
    pub ha1_md5: String,
    /// Lower-case hex `SHA-256(user:domain:password)`.
    pub ha1_sha256: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Bindings are persisted exactly as the registrar keeps them: the registrar owns the
/// type, the store only maps it to rows.
pub use registrar::Binding;

/// One publication or subscription of the presence agent, encoded by its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRow {
    /// What the row holds, e.g. `publication`.
    pub kind: String,
    /// Unique within `kind`.
    pub key: String,
    /// Unix seconds after which the row is dead.
    pub expires_at: i64,
    pub data: Vec<u8>,
}

/// Handle to the database. Cheap to clone; clones share the connection pools.
#[derive(Debug, Clone)]
pub struct Store {
    /// `synchronous=NORMAL`: reads and binding writes.
    pool: SqlitePool,
    /// One `synchronous=FULL` connection: accounts, secrets and XCAP documents.
    durable: SqlitePool,
}

impl Store {
    /// Open (creating if needed) `data_dir/avail.db` and bring its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(data_dir)?;
        let database = data_dir.join(DATABASE_FILE);
        create_private_file(&database)?;
        let options = SqliteConnectOptions::new()
            .filename(&database)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let durable = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().synchronous(SqliteSynchronous::Full))
            .await?;
        migrate(&durable).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await?;
        Ok(Store { pool, durable })
    }

    /// Wait for pending work and close every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
        self.durable.close().await;
    }

    /// Add an account; `domain` should be lower-case, as AOR keys are.
    pub async fn add_account(
        &self,
        user: &str,
        domain: &str,
        ha1_md5: &str,
        ha1_sha256: &str,
    ) -> Result<(), StoreError> {
        let mut tx = begin(&self.durable).await?;
        let inserted = sqlx::query(
            "INSERT INTO accounts (user, domain, ha1_md5, ha1_sha256, created_at)
             VALUES (?, ?, ?, ?, CAST(strftime('%s', 'now') AS INTEGER))
             ON CONFLICT (user, domain) DO NOTHING",
        )
        .bind(user)
        .bind(domain)
        .bind(ha1_md5)
        .bind(ha1_sha256)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::AlreadyExists);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replace an account's hashes (password change).
    pub async fn set_account_hashes(
        &self,
        user: &str,
        domain: &str,
        ha1_md5: &str,
        ha1_sha256: &str,
    ) -> Result<(), StoreError> {
        let mut tx = begin(&self.durable).await?;
        let updated = sqlx::query(
            "UPDATE accounts SET ha1_md5 = ?, ha1_sha256 = ? WHERE user = ? AND domain = ?",
        )
        .bind(ha1_md5)
        .bind(ha1_sha256)
        .bind(user)
        .bind(domain)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Remove an account and its registrations (AOR `user@domain`).
    pub async fn remove_account(&self, user: &str, domain: &str) -> Result<(), StoreError> {
        let mut tx = begin(&self.durable).await?;
        let removed = sqlx::query("DELETE FROM accounts WHERE user = ? AND domain = ?")
            .bind(user)
            .bind(domain)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM bindings WHERE aor = ?")
            .bind(format!("{user}@{domain}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every `(user, domain)`, sorted by domain, then user.
    pub async fn list_accounts(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT user, domain FROM accounts ORDER BY domain, user")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("user")?, row.try_get("domain")?)))
            .collect()
    }

    pub async fn get_account(
        &self,
        user: &str,
        domain: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT user, domain, ha1_md5, ha1_sha256, created_at FROM accounts WHERE user = ? AND domain = ?",
        )
        .bind(user)
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(AccountRecord {
            user: row.try_get("user")?,
            domain: row.try_get("domain")?,
            ha1_md5: row.try_get("ha1_md5")?,
            ha1_sha256: row.try_get("ha1_sha256")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    /// Atomically make `bindings` the complete binding set of `aor` (empty removes them all).
    /// Every record's `aor` must equal `aor`.
    pub async fn replace_bindings(
        &self,
        aor: &str,
        bindings: &[Binding],
    ) -> Result<(), StoreError> {
        self.replace_binding_sets(&[(aor, bindings)]).await
    }

    /// [`Self::replace_bindings`] for several AORs in one transaction: the server commits a
    /// burst of registrations together (group commit) instead of paying one transaction each.
    /// All sets are stored, or none.
    pub async fn replace_binding_sets(
        &self,
        sets: &[(&str, &[Binding])],
    ) -> Result<(), StoreError> {
        for (aor, bindings) in sets {
            if let Some(other) = bindings.iter().find(|b| b.aor != *aor) {
                return Err(StoreError::Invalid(format!(
                    "binding for {} given for {aor}",
                    other.aor
                )));
            }
        }
        let mut tx = begin(&self.pool).await?;
        for (aor, bindings) in sets {
            sqlx::query("DELETE FROM bindings WHERE aor = ?")
                .bind(aor)
                .execute(&mut *tx)
                .await?;
            for (position, binding) in (0i64..).zip(bindings.iter()) {
                insert_binding(&mut tx, position, binding).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delete bindings that expired at or before `now`; returns how many were removed.
    pub async fn remove_expired_bindings(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = begin(&self.pool).await?;
        let removed = sqlx::query("DELETE FROM bindings WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    /// For start-up: purge expired bindings, then return the rest, grouped by AOR in their
    /// stored order.
    pub async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        self.remove_expired_bindings(now).await?;
        let rows = sqlx::query(
            "SELECT aor, contact, instance, q, call_id, cseq, expires_at, path, transport, source,
                    user_agent, temp_gruus
             FROM bindings ORDER BY aor, position",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(binding_from_row).collect()
    }

    /// Upserts `rows` and deletes the `(kind, key)` pairs of `removed`, all in one
    /// transaction: a crash leaves the state of one save or of the next, never a mixture.
    pub async fn save_presence_state(
        &self,
        rows: &[PresenceRow],
        removed: &[(String, String)],
    ) -> Result<(), StoreError> {
        // Many rows per statement: each statement is a round trip to the SQLite worker
        // thread, which under load cost more than the rows themselves.
        let mut tx = begin(&self.pool).await?;
        for chunk in removed.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM presence_state WHERE (kind, key) IN (VALUES {})",
                vec!["(?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (kind, key) in chunk {
                query = query.bind(kind).bind(key);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT OR REPLACE INTO presence_state (kind, key, expires_at, data) VALUES {}",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&row.kind)
                    .bind(&row.key)
                    .bind(row.expires_at)
                    .bind(&row.data);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// For start-up: purge rows dead at `now`, then return the rest ordered by kind and key.
    pub async fn load_presence_state(&self, now: i64) -> Result<Vec<PresenceRow>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        sqlx::query("DELETE FROM presence_state WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let rows = sqlx::query(
            "SELECT kind, key, expires_at, data FROM presence_state ORDER BY kind, key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PresenceRow {
                    kind: row.try_get("kind")?,
                    key: row.try_get("key")?,
                    expires_at: row.try_get("expires_at")?,
                    data: row.try_get("data")?,
                })
            })
            .collect()
    }

    /// The secret stored under `name`, created with `generate` (and stored) the first time.
    pub async fn get_or_create_secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let mut tx = begin(&self.durable).await?;
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let secret = match existing {
            Some(secret) => secret,
            None => {
                let secret = generate();
                sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?)")
                    .bind(name)
                    .bind(&secret)
                    .execute(&mut *tx)
                    .await?;
                secret
            }
        };
        tx.commit().await?;
        Ok(secret)
    }
}

/// `BEGIN IMMEDIATE` takes the write lock up front: a deferred transaction that reads and
/// then writes can fail with SQLITE_BUSY at once, bypassing the busy timeout, when another
/// connection wrote in between.
async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
        .fetch_one(&mut *tx)
        .await?;
    let current = current.unwrap_or(0);
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::Invalid(format!(
            "database schema version {current} is newer than this program ({known})"
        )));
    }
    for (version, sql) in (1i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The data directory holds credentials (HA1 hashes) and the TLS key: a new one is made
/// readable by the server's user only. An existing directory keeps the operator's mode.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Create the database file with mode 0600 before SQLite opens it: SQLite gives its WAL and
/// shared-memory files the database file's permissions.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

async fn insert_binding(
    tx: &mut Transaction<'static, Sqlite>,
    position: i64,
    b: &Binding,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bindings (aor, position, contact, instance, q, call_id, cseq, expires_at, path,
                               transport, source, user_agent, temp_gruus)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&b.aor)
    .bind(position)
    .bind(&b.contact)
    .bind(&b.instance)
    .bind(b.q)
    .bind(&b.call_id)
    .bind(i64::from(b.cseq))
    .bind(b.expires_at)
    .bind(b.path.join("\n"))
    .bind(&b.transport)
    .bind(&b.source)
    .bind(&b.user_agent)
    .bind(b.temp_gruus.join("\n"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn binding_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Binding, StoreError> {
    let cseq: i64 = row.try_get("cseq")?;
    let path: String = row.try_get("path")?;
    let temp_gruus: String = row.try_get("temp_gruus")?;
    Ok(Binding {
        aor: row.try_get("aor")?,
        contact: row.try_get("contact")?,
        instance: row.try_get("instance")?,
        q: row.try_get("q")?,
        call_id: row.try_get("call_id")?,
        cseq: u32::try_from(cseq)
            .map_err(|_| StoreError::Invalid(format!("CSeq {cseq} out of range")))?,
        expires_at: row.try_get("expires_at")?,
        path: split_lines(&path),
        transport: row.try_get("transport")?,
        source: row.try_get("source")?,
        user_agent: row.try_get("user_agent")?,
        temp_gruus: split_lines(&temp_gruus),
    })
}

fn split_lines(text: &str) -> Vec<String> {
    text.split('\n')
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(aor: &str, contact: &str, expires_at: i64) -> Binding {
        Binding {
            aor: aor.to_owned(),
            contact: contact.to_owned(),
            instance: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".to_owned()),
            q: Some(0.5),
            call_id: "call-1".to_owned(),
            cseq: 7,
            expires_at,
            path: vec![
                "<sip:edge1.example.com;lr>".to_owned(),
                "<sip:edge2.example.com;lr>".to_owned(),
            ],
            transport: "tls".to_owned(),
            source: "192.0.2.10:50123".to_owned(),
            user_agent: Some("Blink Qt 6.0".to_owned()),
            temp_gruus: vec!["aa11".to_owned(), "bb22".to_owned()],
        }
    }

    #[tokio::test]
    async fn accounts_add_list_get_update_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("nested")).await.unwrap();
        assert!(dir.path().join("nested").join(DATABASE_FILE).exists());

        store
            .add_account("bob", "example.com", "m1", "s1")
            .await
            .unwrap();
        store
            .add_account("alice", "example.com", "m2", "s2")
            .await
            .unwrap();
        store
            .add_account("alice", "a.org", "m3", "s3")
            .await
            .unwrap();
        assert!(matches!(
            store.add_account("bob", "example.com", "x", "y").await,
            Err(StoreError::AlreadyExists)
        ));
        assert_eq!(
            store.list_accounts().await.unwrap(),
            vec![
                ("alice".to_owned(), "a.org".to_owned()),
                ("alice".to_owned(), "example.com".to_owned()),
                ("bob".to_owned(), "example.com".to_owned()),
            ]
        );

        let bob = store
            .get_account("bob", "example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (bob.ha1_md5.as_str(), bob.ha1_sha256.as_str()),
            ("m1", "s1")
        );
        assert!(bob.created_at > 1_600_000_000);
        assert_eq!(
            store.get_account("carol", "example.com").await.unwrap(),
            None
        );

        store
            .set_account_hashes("bob", "example.com", "m9", "s9")
            .await
            .unwrap();
        let bob = store
            .get_account("bob", "example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (bob.ha1_md5.as_str(), bob.ha1_sha256.as_str()),
            ("m9", "s9")
        );
        assert!(matches!(
            store
                .set_account_hashes("carol", "example.com", "m", "s")
                .await,
            Err(StoreError::NotFound)
        ));

        store.remove_account("bob", "example.com").await.unwrap();
        assert!(matches!(
            store.remove_account("bob", "example.com").await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.list_accounts().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn removing_an_account_removes_its_bindings_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store
            .add_account("bob", "example.com", "m", "s")
            .await
            .unwrap();
        let bob = "bob@example.com";
        let alice = "alice@example.com";
        store
            .replace_bindings(bob, &[binding(bob, "sip:bob@192.0.2.1", 2000)])
            .await
            .unwrap();
        store
            .replace_bindings(alice, &[binding(alice, "sip:alice@192.0.2.2", 2000)])
            .await
            .unwrap();
        store.remove_account("bob", "example.com").await.unwrap();
        let left = store.load_bindings(1000).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].aor, alice);
    }

    #[tokio::test]
    async fn bindings_are_replaced_whole_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let aor = "alice@example.com";
        let first = vec![
            binding(aor, "sip:a@192.0.2.1", 2000),
            binding(aor, "sip:a@192.0.2.2", 2000),
        ];
        let mut second = vec![binding(aor, "sip:a@192.0.2.3;transport=tls", 3000)];
        second[0].instance = None;
        second[0].q = None;
        second[0].path = Vec::new();
        second[0].user_agent = None;
        second[0].temp_gruus = Vec::new();
        second[0].cseq = u32::MAX;
        {
            let store = Store::open(dir.path()).await.unwrap();
            store.replace_bindings(aor, &first).await.unwrap();
            assert_eq!(store.load_bindings(1000).await.unwrap(), first);
            store.replace_bindings(aor, &second).await.unwrap();
            store.close().await;
        }
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.load_bindings(1000).await.unwrap(), second);
        store.replace_bindings(aor, &[]).await.unwrap();
        assert!(store.load_bindings(1000).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn bindings_for_another_aor_are_rejected_without_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let aor = "alice@example.com";
        store
            .replace_bindings(aor, &[binding(aor, "sip:a@192.0.2.1", 2000)])
            .await
            .unwrap();
        let mixed = [
            binding(aor, "sip:a@192.0.2.9", 2000),
            binding("bob@example.com", "sip:b@192.0.2.2", 2000),
        ];
        assert!(matches!(
            store.replace_bindings(aor, &mixed).await,
            Err(StoreError::Invalid(_))
        ));
        let kept = store.load_bindings(1000).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].contact, "sip:a@192.0.2.1");
    }

    #[tokio::test]
    async fn a_new_data_directory_and_database_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let store = Store::open(&dir).await.unwrap();
        store
            .add_account("a", "example.com", "m", "s")
            .await
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DATABASE_FILE)), 0o600);
        assert_eq!(mode(&dir.join(format!("{DATABASE_FILE}-wal"))), 0o600);
    }

    #[tokio::test]
    async fn binding_sets_commit_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let (alice, bob) = ("alice@example.com", "bob@example.com");
        let alice_set = [binding(alice, "sip:a@192.0.2.1", 2000)];
        let bob_set = [binding(bob, "sip:b@192.0.2.2", 2000)];
        store
            .replace_binding_sets(&[(alice, &alice_set[..]), (bob, &bob_set[..])])
            .await
            .unwrap();
        let stored = store.load_bindings(1000).await.unwrap();
        assert_eq!(stored, [alice_set[0].clone(), bob_set[0].clone()]);

        // One invalid set refuses the whole batch: alice's removal is not applied either.
        let wrong = [binding(alice, "sip:x@192.0.2.9", 2000)];
        let result = store
            .replace_binding_sets(&[(alice, &[][..]), (bob, &wrong[..])])
            .await;
        assert!(matches!(result, Err(StoreError::Invalid(_))));
        assert_eq!(store.load_bindings(1000).await.unwrap(), stored);
    }

    #[tokio::test]
    async fn expired_bindings_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let aor = "alice@example.com";
        let bindings = [
            binding(aor, "sip:a@192.0.2.1", 1000),
            binding(aor, "sip:a@192.0.2.2", 1001),
        ];
        store.replace_bindings(aor, &bindings).await.unwrap();
        assert_eq!(store.remove_expired_bindings(999).await.unwrap(), 0);
        let live = store.load_bindings(1000).await.unwrap();
        assert_eq!(live, vec![bindings[1].clone()]);
        assert_eq!(store.remove_expired_bindings(1001).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn secret_is_created_once_and_stable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let store = Store::open(dir.path()).await.unwrap();
            let secret = store
                .get_or_create_secret("nonce", || vec![1, 2, 3])
                .await
                .unwrap();
            let other = store
                .get_or_create_secret("gruu", || vec![9])
                .await
                .unwrap();
            assert_eq!(other, vec![9]);
            store.close().await;
            secret
        };
        assert_eq!(first, vec![1, 2, 3]);
        let store = Store::open(dir.path()).await.unwrap();
        let again = store
            .get_or_create_secret("nonce", || panic!("secret must not be regenerated"))
            .await
            .unwrap();
        assert_eq!(again, first);
    }

    #[tokio::test]
    async fn presence_state_is_saved_atomically_and_purged_when_dead() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let row = |key: &str, expires_at: i64| PresenceRow {
            kind: "subscription".into(),
            key: key.into(),
            expires_at,
            data: key.as_bytes().to_vec(),
        };
        store
            .save_presence_state(&[row("a", 100), row("b", 200), row("c", 50)], &[])
            .await
            .unwrap();
        store
            .save_presence_state(&[row("b", 300)], &[("subscription".into(), "a".into())])
            .await
            .unwrap();
        store.close().await;
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(
            store.load_presence_state(60).await.unwrap(),
            [row("b", 300)]
        );
    }

    #[tokio::test]
    async fn presence_saves_larger_than_one_statement_keep_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let row = |n: usize| PresenceRow {
            kind: "publication".into(),
            key: format!("e{n:04}"),
            expires_at: 1000,
            data: vec![b'x'; n],
        };
        let total = 2 * ROWS_PER_STATEMENT + 7;
        let rows: Vec<PresenceRow> = (0..total).map(row).collect();
        store.save_presence_state(&rows, &[]).await.unwrap();
        // Every row but the last three is deleted, across several statements.
        let removed: Vec<(String, String)> = rows[..total - 3]
            .iter()
            .map(|r| (r.kind.clone(), r.key.clone()))
            .collect();
        store.save_presence_state(&[], &removed).await.unwrap();
        assert_eq!(
            store.load_presence_state(0).await.unwrap(),
            rows[total - 3..]
        );
    }

    #[tokio::test]
    async fn reopening_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).await.unwrap().close().await;
        let store = Store::open(dir.path()).await.unwrap();
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(versions, vec![1, 2, 3]);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
