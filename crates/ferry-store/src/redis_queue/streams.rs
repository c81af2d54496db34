//! The Redis side of the queue: key names, and each command the queue
//! sends, with its reply parsed. Nothing here knows PostgreSQL.

use chrono::{DateTime, Utc};
use ferry_core::ids::{DeliveryId, DestinationId};
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{RedisResult, Script, Value};

/// The consumer group every worker reads the stream through.
pub const GROUP: &str = "ferry-workers";
/// Roughly how many entries the dead-letter stream keeps (it is for
/// visibility; the deliveries table keeps every dead delivery).
const DEAD_MAXLEN: usize = 10_000;

/// The keys of one Ferry deployment, under its prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The stream of deliveries due now.
    pub stream: String,
    /// Delayed retries: a sorted set of `delivery destination` members
    /// scored by due time (unix milliseconds).
    pub delayed: String,
    /// Dead deliveries, for operators to watch.
    pub dead: String,
    /// Present while Redis holds the queue's data; its absence means the
    /// data was lost (a restart without persistence, `FLUSHALL`) and every
    /// waiting delivery must be enqueued again.
    pub marker: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            stream: format!("{prefix}:deliveries"),
            delayed: format!("{prefix}:delayed"),
            dead: format!("{prefix}:dead"),
            marker: format!("{prefix}:queue-marker"),
        }
    }
}

/// One stream entry: which delivery of which destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub entry_id: String,
    pub delivery_id: DeliveryId,
    pub destination_id: DestinationId,
}

/// Moves due members of the delayed set to the stream, atomically (two
/// workers never move the same member twice).
const MOVE_DUE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local sep = string.find(member, ' ', 1, true)
  redis.call('XADD', KEYS[2], '*', 'd', string.sub(member, 1, sep - 1), 't', string.sub(member, sep + 1))
  redis.call('ZREM', KEYS[1], member)
end
return #due
";

fn member(delivery: &DeliveryId, destination: &DestinationId) -> String {
    format!("{delivery} {destination}")
}

fn field<'a>(entry: &'a StreamId, name: &str) -> Option<&'a [u8]> {
    match entry.map.get(name) {
        Some(Value::BulkString(bytes)) => Some(bytes),
        _ => None,
    }
}

/// The entry's delivery, or `None` for an entry that is not one of ours.
fn parse(entry: &StreamId) -> Option<Entry> {
    let text = |name| std::str::from_utf8(field(entry, name)?).ok();
    Some(Entry {
        entry_id: entry.id.clone(),
        delivery_id: text("d")?.parse().ok()?,
        destination_id: text("t")?.parse().ok()?,
    })
}

/// Parsed entries, and the ids of entries that could not be parsed.
fn parse_all(entries: &[StreamId]) -> (Vec<Entry>, Vec<String>) {
    let mut parsed = Vec::with_capacity(entries.len());
    let mut foreign = Vec::new();
    for entry in entries {
        match parse(entry) {
            Some(e) => parsed.push(e),
            None => foreign.push(entry.id.clone()),
        }
    }
    (parsed, foreign)
}

/// Whether an error says the consumer group (or its stream) is gone.
pub fn is_no_group(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

pub struct Streams {
    pub conn: ConnectionManager,
    pub keys: Keys,
    move_due: Script,
}

impl Streams {
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            move_due: Script::new(MOVE_DUE),
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Creates the consumer group (and the stream) unless it exists; a new
    /// group reads the stream from its start. True when it was created.
    pub async fn ensure_group(&self) -> RedisResult<bool> {
        let created: RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn())
            .await;
        match created {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds deliveries due now to the stream, in one round trip.
    pub async fn add(&self, items: &[(&DeliveryId, &DestinationId)]) -> RedisResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (delivery, destination) in items {
            pipe.cmd("XADD")
                .arg(&self.keys.stream)
                .arg("*")
                .arg("d")
                .arg(delivery.as_str())
                .arg("t")
                .arg(destination.as_str())
                .ignore();
        }
        pipe.query_async(&mut self.conn()).await
    }

    /// Schedules deliveries for later (delayed retries).
    pub async fn delay(
        &self,
        items: &[(&DeliveryId, &DestinationId, DateTime<Utc>)],
    ) -> RedisResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&self.keys.delayed);
        for (delivery, destination, at) in items {
            cmd.arg(at.timestamp_millis())
                .arg(member(delivery, destination));
        }
        cmd.query_async(&mut self.conn()).await
    }

    /// Moves up to `limit` delayed deliveries due at `now` to the stream.
    pub async fn move_due(&self, now: DateTime<Utc>, limit: usize) -> RedisResult<usize> {
        self.move_due
            .key(&self.keys.delayed)
            .key(&self.keys.stream)
            .arg(now.timestamp_millis())
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
    }

    /// Reads up to `count` entries no consumer of the group has read yet.
    pub async fn read_new(&self, consumer: &str, count: usize) -> RedisResult<Vec<Entry>> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&self.keys.stream)
            .arg(">")
            .query_async(&mut self.conn())
            .await?;
        let entries: Vec<StreamId> = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        let (parsed, foreign) = parse_all(&entries);
        self.ack(&foreign).await?;
        Ok(parsed)
    }

    /// Takes over up to `count` entries other consumers read but did not
    /// acknowledge for `min_idle_ms` (crashed workers).
    pub async fn claim_idle(
        &self,
        consumer: &str,
        min_idle_ms: u64,
        count: usize,
    ) -> RedisResult<Vec<Entry>> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await?;
        let (parsed, foreign) = parse_all(&reply.claimed);
        self.ack(&foreign).await?;
        Ok(parsed)
    }

    /// Resets the idle time of entries this consumer still works on, so
    /// that no other consumer takes them over.
    pub async fn touch(&self, consumer: &str, entry_ids: &[&str]) -> RedisResult<()> {
        if entry_ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&self.keys.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(entry_ids)
            .arg("JUSTID");
        let _: Value = cmd.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// Acknowledges entries and deletes them from the stream (their
    /// deliveries are done with, or live on in the store).
    pub async fn ack<S: AsRef<str>>(&self, entry_ids: &[S]) -> RedisResult<()> {
        if entry_ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = entry_ids.iter().map(AsRef::as_ref).collect();
        redis::pipe()
            .cmd("XACK")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .arg(&ids)
            .ignore()
            .cmd("XDEL")
            .arg(&self.keys.stream)
            .arg(&ids)
            .ignore()
            .query_async(&mut self.conn())
            .await
    }

    /// Records dead deliveries on the dead-letter stream.
    pub async fn dead(&self, items: &[(&DeliveryId, &DestinationId, &str)]) -> RedisResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (delivery, destination, error) in items {
            pipe.cmd("XADD")
                .arg(&self.keys.dead)
                .arg("MAXLEN")
                .arg("~")
                .arg(DEAD_MAXLEN)
                .arg("*")
                .arg("d")
                .arg(delivery.as_str())
                .arg("t")
                .arg(destination.as_str())
                .arg("error")
                .arg(*error)
                .ignore();
        }
        pipe.query_async(&mut self.conn()).await
    }

    /// Sets the marker unless present; true when this call set it (the
    /// caller then enqueues every waiting delivery).
    pub async fn take_marker(&self) -> RedisResult<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(&self.keys.marker)
            .arg(Utc::now().to_rfc3339())
            .arg("NX")
            .query_async(&mut self.conn())
            .await?;
        Ok(set.is_some())
    }

    /// Drops the marker, so that the next reconciliation enqueues every
    /// waiting delivery (after the consumer group was lost).
    pub async fn drop_marker(&self) -> RedisResult<()> {
        redis::cmd("DEL")
            .arg(&self.keys.marker)
            .query_async(&mut self.conn())
            .await
    }
}
