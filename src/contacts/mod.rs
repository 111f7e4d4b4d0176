//! The contact history: what happened to what was sent to each customer
//! and each address, kept between runs in an embedded SQLite database
//! (`--contacts PATH` or `LETTERPRESS_CONTACTS`). Beside the input and the
//! layouts, it is something a run reads; `send` and `feedback import`
//! write it.
//!
//! One table of events: per customer id and address (an email address in
//! lower case, or a postal address), what happened (sent, accepted by the
//! relay, refused by it, a hard or soft bounce, a complaint, returned mail,
//! an address corrected), when, from which source file, run, piece or
//! Message-ID, and the reason given. Each event has a stable key (from its
//! source and what identifies it there), so recording the same event twice
//! adds nothing: importing a file again, or a `send` that goes on after a
//! crash, is safe.
//!
//! Times are RFC 3339 in UTC, so that they sort as text; events of the
//! same second count in the order they were recorded (a correction made
//! right after a return clears it).
//!
//! Invariants: the database is created on first use and migrated by its
//! schema version (`PRAGMA user_version`; a newer one than this build knows
//! is refused, never touched); it is in WAL mode, so readers are never
//! blocked by the one writer, and writers wait for each other (busy
//! timeout) instead of failing; every write is one transaction (`BEGIN
//! IMMEDIATE`), so a process killed during an import leaves the database as
//! it was before that transaction or after it, never between.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub mod key;
pub use key::AddressKey;

/// The schema this build writes.
pub const SCHEMA_VERSION: i32 = 3;

/// How long a writer waits for another one before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The migrations, in order: migration `i` takes the schema from version
/// `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE events (
        key         TEXT PRIMARY KEY,
        customer_id TEXT,
        address     TEXT NOT NULL,
        channel     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        at          TEXT NOT NULL,
        run_id      TEXT,
        piece       INTEGER,
        message_id  TEXT,
        source      TEXT NOT NULL,
        detail      TEXT
    ) STRICT;
    CREATE INDEX events_customer ON events (customer_id, at);
    CREATE INDEX events_address ON events (address, at);
    CREATE INDEX events_message ON events (message_id);
",
    "
    ALTER TABLE events ADD COLUMN barcode TEXT;
    CREATE INDEX events_barcode ON events (barcode);
",
    // Version 3: settings of the history, such as the id of the address
    // key its postal addresses are hashed with (see [`key`]).
    "
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
",
];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A letter went to print, or an email was written.
    Sent,
    /// The relay accepted an email.
    Accepted,
    /// The relay refused an email for good.
    Refused,
    /// A permanent delivery failure (5.x.x): the address does not work.
    HardBounce,
    /// A temporary delivery failure (4.x.x).
    SoftBounce,
    /// The customer marked an email as spam.
    Complaint,
    /// A letter came back as undeliverable.
    Returned,
    /// The customer's address was corrected.
    AddressCorrected,
}

impl EventKind {
    /// The name in the database and in reports.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Sent => "sent",
            EventKind::Accepted => "accepted",
            EventKind::Refused => "refused",
            EventKind::HardBounce => "hard_bounce",
            EventKind::SoftBounce => "soft_bounce",
            EventKind::Complaint => "complaint",
            EventKind::Returned => "returned",
            EventKind::AddressCorrected => "address_corrected",
        }
    }

    fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::Sent,
            EventKind::Accepted,
            EventKind::Refused,
            EventKind::HardBounce,
            EventKind::SoftBounce,
            EventKind::Complaint,
            EventKind::Returned,
            EventKind::AddressCorrected,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// One event of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Stable over re-imports: the source's own identity of the event.
    pub key: String,
    /// The customer (record id), when known.
    pub customer_id: Option<String>,
    /// The email address (lower case) or the postal address.
    pub address: String,
    /// `email` or `post`.
    pub channel: String,
    /// What happened.
    pub kind: EventKind,
    /// When, RFC 3339.
    pub at: String,
    /// The run it concerns.
    pub run_id: Option<String>,
    /// The mail piece of a print run.
    pub piece: Option<u32>,
    /// The email's Message-ID (without angle brackets).
    pub message_id: Option<String>,
    /// Where it was learnt: `send`, or the imported file.
    pub source: String,
    /// The reason given (a server's reply, a bounce's status).
    pub detail: Option<String>,
    /// A letter's postal barcode: the Intelligent Mail tracking code (20
    /// digits), by which a scanned return is matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
}

/// Who something was sent to, as the history has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The customer.
    pub customer_id: Option<String>,
    /// The address it went to.
    pub address: String,
    /// The run it came from.
    pub run_id: Option<String>,
    /// Its mail piece, for a letter of a print run.
    pub piece: Option<u32>,
}

/// An open contact history.
pub struct Contacts {
    conn: Connection,
    path: PathBuf,
}

impl Contacts {
    /// Opens the database at `path`, creating and migrating it as needed.
    pub fn open(path: &Path) -> Result<Contacts> {
        let db_err = db_error(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        // A newer schema is refused before anything is changed (setting
        // the journal mode below writes to the file).
        let version: i32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_err)?;
        if version > SCHEMA_VERSION {
            return Err(newer(path, version));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Output(format!(
                "contact history {}: cannot use WAL mode (journal mode {mode}); put it on a local file system",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(db_err)?;
        migrate(&mut conn).map_err(|e| match e {
            Migration::Db(e) => db_err(e),
            Migration::Newer(v) => newer(path, v),
        })?;
        Ok(Contacts {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in one write transaction (`BEGIN IMMEDIATE`: it waits
    /// for another writer instead of failing half-way), committed when it
    /// succeeds.
    fn write<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let db_err = db_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let out = work(&tx).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Records events in one transaction; returns how many were new (an
    /// event whose key is already there is left as it is).
    pub fn record(&mut self, events: &[Event]) -> Result<usize> {
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events
                 (key, customer_id, address, channel, kind, at, run_id, piece, message_id, source, detail, barcode)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut added = 0;
            for e in events {
                added += insert.execute(params![
                    e.key,
                    e.customer_id,
                    e.address,
                    e.channel,
                    e.kind.name(),
                    e.at,
                    e.run_id,
                    e.piece,
                    e.message_id,
                    e.source,
                    e.detail,
                    e.barcode
                ])?;
            }
            Ok(added)
        })
    }

    /// Deletes the events before `day` (`YYYY-MM-DD`) in one transaction;
    /// returns how many.
    pub fn purge_before(&mut self, day: &str) -> Result<usize> {
        self.write(|tx| tx.execute("DELETE FROM events WHERE at < ?1", [day]))
    }

    /// A customer's events, oldest first (in the order recorded within a second).
    pub fn history(&self, customer_id: &str) -> Result<Vec<Event>> {
        self.select("WHERE customer_id = ?1 ORDER BY at, rowid", customer_id)
    }

    /// Who the email with this Message-ID went to, as `send` recorded it.
    pub fn by_message_id(&self, message_id: &str) -> Result<Option<Sent>> {
        self.sent(
            "message_id = ?1 AND kind IN ('sent', 'accepted', 'refused')",
            [message_id],
        )
    }

    /// Every customer the history knows at this email address (sent,
    /// accepted or refused there), in order of id.
    pub fn customers_at(&self, address: &str) -> Result<Vec<String>> {
        let db_err = db_error(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT customer_id FROM events
                 WHERE address = ?1 AND customer_id IS NOT NULL AND kind IN ('sent', 'accepted', 'refused')
                 ORDER BY customer_id",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([address.to_lowercase()], |r| r.get(0))
            .map_err(db_err)?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)
    }

    /// Checks that the history's postal addresses are hashed with `key`:
    /// the first keyed use records its id; any other key is refused (no
    /// address would match what was recorded with the first).
    pub fn check_key(&mut self, key: &AddressKey) -> Result<()> {
        let path = self.path.clone();
        let known: Option<String> = self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES ('address_key', ?1)",
                [key.id()],
            )?;
            tx.query_row(
                "SELECT value FROM settings WHERE name = 'address_key'",
                [],
                |r| r.get(0),
            )
            .optional()
        })?;
        match known {
            Some(id) if id != key.id() => Err(Error::Usage(format!(
                "contact history {} hashes postal addresses with the address key {id}, not with {} (--address-key): with another key no address matches what it recorded",
                path.display(),
                key.id()
            ))),
            _ => Ok(()),
        }
    }

    /// Who was last sent something at this address.
    pub fn by_address(&self, address: &str) -> Result<Option<Sent>> {
        self.sent(
            "address = ?1 AND customer_id IS NOT NULL AND kind IN ('sent', 'accepted', 'refused')",
            [address.to_lowercase()],
        )
    }

    /// The newest event matching `condition` (over `params`) as what was
    /// sent to whom.
    fn sent(&self, condition: &str, params: impl rusqlite::Params) -> Result<Option<Sent>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT customer_id, address, run_id, piece FROM events WHERE {condition}
                     ORDER BY at DESC LIMIT 1"
                ),
                params,
                |r| {
                    Ok(Sent {
                        customer_id: r.get(0)?,
                        address: r.get(1)?,
                        run_id: r.get(2)?,
                        piece: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(db_error(&self.path))
    }

    fn select(&self, tail: &str, arg: &str) -> Result<Vec<Event>> {
        let db_err = db_error(&self.path);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT key, customer_id, address, channel, kind, at, run_id, piece, message_id, source, detail, barcode
                 FROM events {tail}"
            ))
            .map_err(db_err)?;
        let rows = stmt
            .query_map([arg], |r| {
                let kind: String = r.get(4)?;
                Ok(Event {
                    key: r.get(0)?,
                    customer_id: r.get(1)?,
                    address: r.get(2)?,
                    channel: r.get(3)?,
                    kind: EventKind::parse(&kind).unwrap_or(EventKind::Sent),
                    at: r.get(5)?,
                    run_id: r.get(6)?,
                    piece: r.get(7)?,
                    message_id: r.get(8)?,
                    source: r.get(9)?,
                    detail: r.get(10)?,
                    barcode: r.get(11)?,
                })
            })
            .map_err(db_err)?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)
    }
}

/// Why the history says not to email a customer or an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// What decided it, for the manifest: the event, its date and source.
    pub reason: String,
    /// A complaint: email is suppressed, not only routed elsewhere.
    pub complaint: bool,
}

/// The history as a run routes with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdicts {
    /// Email addresses (lower case) not to use.
    pub addresses: HashMap<String, Block>,
    /// Customers who complained about our email.
    pub customers: HashMap<String, Block>,
    /// Postal address keys with a returned letter: letters there are held.
    #[serde(default)]
    pub held: HashMap<String, Block>,
}

impl Verdicts {
    /// The block on emailing `customer` at `address`, if any: a complaint
    /// first, then the address.
    pub fn email(&self, customer: &str, address: Option<&str>) -> Option<&Block> {
        self.customers
            .get(customer)
            .or_else(|| address.and_then(|a| self.addresses.get(&a.trim().to_lowercase())))
    }
}

impl Contacts {
    /// What the history says about emailing: an address with a hard
    /// bounce, or `soft_bounces` soft bounces in a row, is not used until a
    /// corrected address or a later message accepted and not bounced
    /// clears it; a customer who complained is not emailed.
    pub fn verdicts(&self, soft_bounces: u32) -> Result<Verdicts> {
        let db_err = db_error(&self.path);
        let mut out = Verdicts::default();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT address, kind, at, source, detail, customer_id, message_id FROM events
                 WHERE channel = 'email' ORDER BY address, at, rowid",
            )
            .map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        let mut state = AddressState::default();
        while let Some(r) = rows.next().map_err(db_err)? {
            let address: String = r.get(0).map_err(db_err)?;
            let kind: String = r.get(1).map_err(db_err)?;
            let at: String = r.get(2).map_err(db_err)?;
            let source: String = r.get(3).map_err(db_err)?;
            let detail: Option<String> = r.get(4).map_err(db_err)?;
            let customer: Option<String> = r.get(5).map_err(db_err)?;
            let message: Option<String> = r.get(6).map_err(db_err)?;
            if state.address.as_deref() != Some(address.as_str()) {
                state.settle(soft_bounces, &mut out);
                state = AddressState {
                    address: Some(address.clone()),
                    ..AddressState::default()
                };
            }
            let said = format!(
                "on {at} ({}; {source})",
                detail.as_deref().unwrap_or("no detail")
            );
            let bounce = Bounce { said, at, message };
            match EventKind::parse(&kind) {
                Some(EventKind::HardBounce) => state.hard = Some(bounce),
                Some(EventKind::SoftBounce) => state.softs.push(bounce),
                Some(EventKind::AddressCorrected) => {
                    state.hard = None;
                    state.softs.clear();
                }
                Some(EventKind::Accepted) => state.accepted(&bounce),
                Some(EventKind::Complaint) => {
                    let reason =
                        format!("email suppressed: the customer complained {}", bounce.said);
                    if let Some(c) = customer {
                        let block = Block {
                            reason: reason.clone(),
                            complaint: true,
                        };
                        out.customers.insert(c, block);
                    }
                    // The mailbox complained: no customer is emailed there.
                    state.complaint = Some(reason);
                }
                _ => {}
            }
        }
        state.settle(soft_bounces, &mut out);
        self.holds(&mut out)?;
        Ok(out)
    }

    /// Postal addresses whose last word is a returned letter (a corrected
    /// address clears it).
    fn holds(&self, out: &mut Verdicts) -> Result<()> {
        let db_err = db_error(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT address, kind, at, run_id, piece, source FROM events
                 WHERE channel = 'post' AND kind IN ('returned', 'address_corrected')
                 ORDER BY address, at, rowid",
            )
            .map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        while let Some(r) = rows.next().map_err(db_err)? {
            let address: String = r.get(0).map_err(db_err)?;
            let kind: String = r.get(1).map_err(db_err)?;
            if kind == EventKind::AddressCorrected.name() {
                out.held.remove(&address);
                continue;
            }
            let at: String = r.get(2).map_err(db_err)?;
            let run: Option<String> = r.get(3).map_err(db_err)?;
            let piece: Option<u32> = r.get(4).map_err(db_err)?;
            let source: String = r.get(5).map_err(db_err)?;
            let reason = format!(
                "a letter to this address came back undeliverable on {at} (run {}, piece {}; {source}); letters there wait for a corrected address",
                run.as_deref().unwrap_or("?"),
                piece.map_or("?".into(), |p| p.to_string())
            );
            out.held.insert(
                address,
                Block {
                    reason,
                    complaint: false,
                },
            );
        }
        Ok(())
    }

    /// The customer's addresses that a returned letter (`post`) or a
    /// bounce (`email`) was recorded against, as `(channel, address)`: what
    /// an address correction for them clears.
    pub fn standing_against(&self, customer_id: &str) -> Result<Vec<(String, String)>> {
        let db_err = db_error(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT channel, address FROM events
                 WHERE customer_id = ?1 AND kind IN ('returned', 'hard_bounce', 'soft_bounce')
                 ORDER BY channel, address",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([customer_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)
    }

    /// The letter whose Intelligent Mail tracking code is `tracking`.
    pub fn by_barcode(&self, tracking: &str) -> Result<Option<Sent>> {
        self.sent(
            "channel = 'post' AND kind = 'sent' AND barcode = ?1",
            [tracking],
        )
    }

    /// The letter sent as piece `piece` of run `run`, as `run --contacts`
    /// recorded it.
    pub fn by_piece(&self, run: &str, piece: u32) -> Result<Option<Sent>> {
        self.sent(
            "channel = 'post' AND kind = 'sent' AND run_id = ?1 AND piece = ?2",
            params![run, piece],
        )
    }
}

/// The history at `db` as a run (or `validate`) routes with it: opened,
/// checked to hash postal addresses with `key`, which it needs (see
/// [`key`]), and read into [`Verdicts`].
pub fn routing_history(db: &Path, key: Option<&AddressKey>, soft_bounces: u32) -> Result<Verdicts> {
    let key = key.ok_or_else(|| {
        Error::Usage(format!(
            "--contacts {}: the contact history hashes postal addresses with the deployment's address key; give --address-key FILE or LETTERPRESS_ADDRESS_KEY_FILE (`letterpress key new FILE` makes one)",
            db.display()
        ))
    })?;
    let mut contacts = Contacts::open(db)?;
    contacts.check_key(key)?;
    contacts.verdicts(soft_bounces)
}

/// A bounce as the verdicts weigh it.
struct Bounce {
    said: String,
    at: String,
    message: Option<String>,
}

/// The bounces standing against one address, in time order.
#[derive(Default)]
struct AddressState {
    address: Option<String>,
    hard: Option<Bounce>,
    softs: Vec<Bounce>,
    /// A complaint from this mailbox (no correction lifts it).
    complaint: Option<String>,
}

impl AddressState {
    /// A message accepted later than a bounce, and not the bounced message
    /// itself (a relay accepts a message that bounces afterwards), shows
    /// the address working again.
    fn accepted(&mut self, ok: &Bounce) {
        let clears = |b: &Bounce| ok.at > b.at && ok.message != b.message;
        if self.hard.as_ref().is_some_and(clears) {
            self.hard = None;
        }
        if self.softs.last().is_some_and(clears) {
            self.softs.clear();
        }
    }

    /// Records the block on this address, if one stands: its hard
    /// bounce, or its run of soft bounces when it is long enough.
    fn settle(&self, soft_bounces: u32, out: &mut Verdicts) {
        let Some(address) = &self.address else { return };
        if let Some(reason) = &self.complaint {
            let block = Block {
                reason: reason.clone(),
                complaint: true,
            };
            out.addresses.insert(address.clone(), block);
            return;
        }
        let reason = match (&self.hard, self.softs.last()) {
            (Some(hard), _) => format!("a hard bounce {}", hard.said),
            (None, Some(last)) if self.softs.len() as u32 >= soft_bounces.max(1) => {
                format!(
                    "{} soft bounces in a row, the last {}",
                    self.softs.len(),
                    last.said
                )
            }
            _ => return,
        };
        out.addresses.insert(
            address.clone(),
            Block {
                reason: format!("email to {address} not used: the contact history has {reason}"),
                complaint: false,
            },
        );
    }
}

/// The refusal of a history with a newer schema than this build's.
fn newer(path: &Path, version: i32) -> Error {
    Error::Usage(format!(
        "contact history {} has schema version {version}, newer than this letterpress knows ({SCHEMA_VERSION}); nothing in it was changed; use a newer letterpress",
        path.display()
    ))
}

/// The error of a database operation on the history at `path`.
fn db_error(path: &Path) -> impl Fn(rusqlite::Error) -> Error + Copy + '_ {
    move |e| Error::Output(format!("contact history {}: {e}", path.display()))
}

enum Migration {
    Db(rusqlite::Error),
    Newer(i32),
}

impl From<rusqlite::Error> for Migration {
    fn from(e: rusqlite::Error) -> Self {
        Migration::Db(e)
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction a step; two
/// processes opening a new database at once migrate it once.
fn migrate(conn: &mut Connection) -> std::result::Result<(), Migration> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Migration::Newer(version));
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str, kind: EventKind) -> Event {
        Event {
            key: key.into(),
            customer_id: Some("C-1".into()),
            address: "ann@example.com".into(),
            channel: "email".into(),
            kind,
            at: "2026-11-28T10:00:00Z".into(),
            run_id: Some("r1".into()),
            piece: None,
            message_id: Some("m1@example.com".into()),
            source: "send".into(),
            detail: None,
            barcode: None,
        }
    }

    #[test]
    fn a_correction_clears_what_came_before_it_only() {
        let dir = std::env::temp_dir().join(format!("lp-corrected-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut db = Contacts::open(&dir.join("contacts.db")).unwrap();
        let post = |key: &str, kind, at: &str| Event {
            address: "post:abc".into(),
            channel: "post".into(),
            at: at.into(),
            message_id: None,
            ..event(key, kind)
        };
        let returned = post("r1", EventKind::Returned, "2026-11-01T00:00:00Z");
        db.record(&[returned]).unwrap();
        assert!(db.verdicts(3).unwrap().held.contains_key("post:abc"));
        assert_eq!(
            db.standing_against("C-1").unwrap(),
            vec![("post".to_owned(), "post:abc".to_owned())]
        );
        let fixed = post("c1", EventKind::AddressCorrected, "2026-11-02T00:00:00Z");
        db.record(&[fixed]).unwrap();
        assert!(db.verdicts(3).unwrap().held.is_empty(), "corrected");
        let again = post("r2", EventKind::Returned, "2026-11-03T00:00:00Z");
        db.record(&[again]).unwrap();
        assert!(
            db.verdicts(3).unwrap().held.contains_key("post:abc"),
            "a return after the correction holds again"
        );
        let hard = Event {
            at: "2026-11-01T00:00:00Z".into(),
            ..event("h1", EventKind::HardBounce)
        };
        let fixed = Event {
            at: "2026-11-02T00:00:00Z".into(),
            message_id: None,
            ..event("c2", EventKind::AddressCorrected)
        };
        db.record(&[hard]).unwrap();
        assert!(db
            .verdicts(3)
            .unwrap()
            .email("C-1", Some("ann@example.com"))
            .is_some());
        db.record(&[fixed]).unwrap();
        assert!(db
            .verdicts(3)
            .unwrap()
            .email("C-1", Some("ann@example.com"))
            .is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn created_migrated_and_idempotent() {
        let dir = std::env::temp_dir().join(format!("lp-contacts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("contacts.db");
        let mut db = Contacts::open(&path).unwrap();
        let events = [
            event("a", EventKind::Accepted),
            event("b", EventKind::HardBounce),
        ];
        assert_eq!(db.record(&events).unwrap(), 2);
        assert_eq!(
            db.record(&events).unwrap(),
            0,
            "the same events add nothing"
        );
        drop(db);
        let db = Contacts::open(&path).unwrap();
        let history = db.history("C-1").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].kind, EventKind::HardBounce);
        let sent = db.by_message_id("m1@example.com").unwrap().unwrap();
        assert_eq!(sent.customer_id.as_deref(), Some("C-1"));
        assert_eq!(db.by_address("Ann@Example.com").unwrap(), Some(sent));
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let columns: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('events') WHERE name = 'barcode'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(columns, 1, "migrated to version 2");
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(conn);
        assert!(Contacts::open(&path).is_err(), "a newer schema is refused");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
