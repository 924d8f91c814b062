//! The schema, as a list of migrations indexed by `PRAGMA user_version`.

pub const SCHEMA_VERSION: i64 = 4;

/// MIGRATIONS[i] takes a database from version i to i + 1.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the picosnitch 2.x schema (contime in unix seconds). Side tables keep a connection row small; id 0 is
    // the empty value in each, so a missing parent or domain needs no NULL handling.
    "CREATE TABLE executables (
        id INTEGER PRIMARY KEY,
        exe TEXT NOT NULL,
        name TEXT NOT NULL,
        cmdline TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        UNIQUE (exe, name, cmdline, sha256)
    ) STRICT;
    CREATE TABLE domains (id INTEGER PRIMARY KEY, domain TEXT NOT NULL UNIQUE) STRICT;
    CREATE TABLE addresses (id INTEGER PRIMARY KEY, addr TEXT NOT NULL UNIQUE) STRICT;
    INSERT INTO executables (id, exe, name, cmdline, sha256) VALUES (0, '', '', '', '');
    INSERT INTO domains (id, domain) VALUES (0, '');
    INSERT INTO addresses (id, addr) VALUES (0, '');
    CREATE TABLE connections (
        contime INTEGER NOT NULL,
        send INTEGER NOT NULL,
        recv INTEGER NOT NULL,
        events INTEGER NOT NULL,
        exe_id INTEGER NOT NULL,
        pexe_id INTEGER NOT NULL,
        gpexe_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        family INTEGER NOT NULL,
        protocol INTEGER NOT NULL,
        lport INTEGER NOT NULL,
        rport INTEGER NOT NULL,
        laddr_id INTEGER NOT NULL,
        raddr_id INTEGER NOT NULL,
        domain_id INTEGER NOT NULL,
        netns INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX idx_contime ON connections (contime);
    CREATE INDEX idx_exe_id_contime ON connections (exe_id, contime);
    CREATE INDEX idx_pexe_id_contime ON connections (pexe_id, contime);
    CREATE INDEX idx_gpexe_id_contime ON connections (gpexe_id, contime);
    -- Not part of picosnitch 2.x: the last batch each sender delivered, written in the
    -- same transaction as the batch, so a batch resent after a writer restart is
    -- recognised and not inserted twice.
    CREATE TABLE delivery (source TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) STRICT;",
    // 2: per-dimension summaries by hour, day and week, so the history browser answers
    // "bytes per executable over 30 days" from thousands of rows instead of millions.
    // Not part of picosnitch 2.x; its queries never read them. Kept equal to a recount
    // of `connections` by Store::insert_batch and Store::prune (see summary.rs); the
    // backfill below makes an existing history consistent once.
    //
    // Both are keyed (dim, bucket, value): a query reads one dimension over a range of
    // buckets as one contiguous range of the B-tree and sums by value in memory, and the
    // writer's cells for the current hour and day sit together.
    "CREATE TABLE summary_hour (
        dim INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        value INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        send INTEGER NOT NULL,
        recv INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (dim, bucket, value)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE summary_day (
        dim INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        value INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        send INTEGER NOT NULL,
        recv INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (dim, bucket, value)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE summary_week (
        dim INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        value INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        send INTEGER NOT NULL,
        recv INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (dim, bucket, value)
    ) STRICT, WITHOUT ROWID;",
    // 3: VirusTotal's latest verdict per sha256 (not part of picosnitch 2.x, whose
    // queries never read it). Only a new table: an older history gains it empty, and
    // an older binary's queries are unaffected.
    "CREATE TABLE virustotal (
        sha256 TEXT PRIMARY KEY,
        checked INTEGER NOT NULL,
        result TEXT NOT NULL,
        malicious INTEGER NOT NULL,
        suspicious INTEGER NOT NULL,
        undetected INTEGER NOT NULL,
        harmless INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;",
    // 4: network namespaces in the summaries (dim 10), so the web UI counts them per
    // period without reading every row. No new table: Store::migrate backfills the
    // dimension of an existing version 2 or 3 history in one pass.
    "SELECT 1;",
];
