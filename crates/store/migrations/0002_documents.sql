-- XCAP documents (RFC 4825 §6.2): one row per document, keyed by application usage, owner
-- (the normalised XUI, '' for the global tree) and the document path below the tree. The
-- content is kept as the exact bytes received, so everything outside an edited node survives.
CREATE TABLE documents (
    auid         TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    content      BLOB    NOT NULL,
    etag         TEXT    NOT NULL,
    modified_at  INTEGER NOT NULL,
    PRIMARY KEY (auid, owner, path)
) WITHOUT ROWID;

CREATE INDEX documents_by_owner ON documents (owner, auid, path);

-- Values that must be unique across every document of one application usage, for every
-- user of the server (rls-services service@uri, RFC 4826 §4.1). The primary key makes a
-- second claim fail inside the writing transaction, so two racing writers cannot both win.
CREATE TABLE document_unique_keys (
    auid   TEXT NOT NULL,
    value  TEXT NOT NULL,
    owner  TEXT NOT NULL,
    path   TEXT NOT NULL,
    PRIMARY KEY (auid, value)
) WITHOUT ROWID;

CREATE INDEX document_unique_keys_by_document ON document_unique_keys (auid, owner, path);
