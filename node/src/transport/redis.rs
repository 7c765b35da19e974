//! A second transport: the same signed message bytes over Redis Streams.
//!
//! One stream per domain, key `acp:2:<domain>` (the protocol version, as in
//! the gossip topics); every entry has one field,
//! `m`, holding a message's canonical bytes. The stream is the shared log:
//!
//! - **publish**: what the node would gossip (its own submissions and
//!   receipts) and, when it also runs libp2p, what it accepted from libp2p,
//!   is appended with `XADD`;
//! - **receive**: a reader follows every joined domain's stream with
//!   `XREAD BLOCK` from the last id it saw; each entry goes through the
//!   engine's ingest exactly like a gossip message (invalid entries are
//!   counted and dropped, never re-published);
//! - **anti-entropy**: on start the reader begins at id `0`, so it reads
//!   the whole log once (a full sync); what the node already holds is a
//!   duplicate and ignored.
//!
//! A node with both libp2p and a Redis URL bridges: what it accepts from
//! Redis is published on gossipsub and what it accepts from libp2p is
//! appended to the stream. The engine's duplicate check stops loops.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use tokio::sync::mpsc;

/// The stream field holding a message's bytes.
pub const FIELD: &str = "m";
/// Entries read per `XREAD`.
const READ_COUNT: usize = 256;
/// How long one `XREAD` blocks on the server, in milliseconds.
const BLOCK_MS: u64 = 2_000;
/// Pause before reconnecting after an error.
const RETRY: Duration = Duration::from_millis(500);

/// The stream key of a domain.
pub fn stream_key(domain: &str) -> String {
    format!("acp:2:{domain}")
}

/// Why the Redis transport could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is not a Redis URL.
    #[error("redis url: {0}")]
    Url(String),
    /// Redis could not be reached.
    #[error("redis: {0}")]
    Connect(String),
}

/// One entry read from a domain's stream.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The domain whose stream held it.
    pub domain: String,
    /// The entry's `m` field.
    pub data: Vec<u8>,
}

/// The core's side of the Redis transport.
#[derive(Debug)]
pub struct RedisLink {
    /// Entries read from the streams.
    pub inbound: mpsc::Receiver<Inbound>,
    /// `(domain, bytes)` to append.
    pub outbound: mpsc::Sender<(String, Vec<u8>)>,
}

/// The transport's tasks, to spawn with [`RedisTasks::run`].
#[derive(Debug)]
pub struct RedisTasks {
    client: Client,
    domains: Vec<String>,
    max_message_bytes: usize,
    inbound: mpsc::Sender<Inbound>,
    outbound: mpsc::Receiver<(String, Vec<u8>)>,
}

fn conn_config() -> AsyncConnectionConfig {
    // XREAD BLOCK waits on the server; the client must not time it out.
    AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(5)))
}

async fn connect(client: &Client) -> Result<MultiplexedConnection, redis::RedisError> {
    client
        .get_multiplexed_async_connection_with_config(&conn_config())
        .await
}

/// Opens the transport: checks the URL and that Redis answers `PING`.
pub async fn open(
    url: &str,
    domains: Vec<String>,
    max_message_bytes: usize,
    queue_capacity: usize,
) -> Result<(RedisLink, RedisTasks), RedisError> {
    let client = Client::open(url).map_err(|e| RedisError::Url(e.to_string()))?;
    let mut conn = connect(&client)
        .await
        .map_err(|e| RedisError::Connect(e.to_string()))?;
    redis::cmd("PING")
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| RedisError::Connect(e.to_string()))?;
    let (in_tx, in_rx) = mpsc::channel(queue_capacity.max(1));
    let (out_tx, out_rx) = mpsc::channel(queue_capacity.max(1));
    Ok((
        RedisLink {
            inbound: in_rx,
            outbound: out_tx,
        },
        RedisTasks {
            client,
            domains,
            max_message_bytes,
            inbound: in_tx,
            outbound: out_rx,
        },
    ))
}

impl RedisTasks {
    /// Runs the reader and the writer until the core goes away.
    pub async fn run(self) {
        let RedisTasks {
            client,
            domains,
            max_message_bytes,
            inbound,
            outbound,
        } = self;
        let reader = read_loop(client.clone(), domains, max_message_bytes, inbound);
        let writer = write_loop(client, outbound);
        tokio::join!(reader, writer);
    }
}

async fn write_loop(client: Client, mut outbound: mpsc::Receiver<(String, Vec<u8>)>) {
    let mut conn: Option<MultiplexedConnection> = None;
    while let Some((domain, bytes)) = outbound.recv().await {
        let key = stream_key(&domain);
        // Retry until appended: the stream is the shared log.
        loop {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match connect(&client).await {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "redis writer cannot connect; retrying");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                },
            };
            let r = redis::cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg(FIELD)
                .arg(bytes.as_slice())
                .query_async::<Value>(c)
                .await;
            match r {
                Ok(_) => {
                    tracing::debug!(%domain, "appended to redis stream");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, %domain, "redis XADD failed; retrying");
                    conn = None;
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

async fn read_loop(
    client: Client,
    domains: Vec<String>,
    max_message_bytes: usize,
    inbound: mpsc::Sender<Inbound>,
) {
    if domains.is_empty() {
        return;
    }
    let keys: Vec<String> = domains.iter().map(|d| stream_key(d)).collect();
    let domain_of: HashMap<Vec<u8>, String> = keys
        .iter()
        .zip(&domains)
        .map(|(k, d)| (k.as_bytes().to_vec(), d.clone()))
        .collect();
    // From the beginning: reading the whole log is the full sync.
    let mut last: Vec<String> = vec!["0".to_owned(); keys.len()];
    let mut conn: Option<MultiplexedConnection> = None;
    loop {
        if inbound.is_closed() {
            return;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&client).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "redis reader cannot connect; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS");
        for k in &keys {
            cmd.arg(k);
        }
        for id in &last {
            cmd.arg(id);
        }
        let reply = match cmd.query_async::<Value>(c).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "redis XREAD failed; reconnecting");
                conn = None;
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        for (key, entries) in streams_of(reply) {
            let Some(domain) = domain_of.get(&key) else {
                continue;
            };
            let Some(idx) = keys.iter().position(|k| k.as_bytes() == key.as_slice()) else {
                continue;
            };
            for (id, data) in entries {
                if let Some(slot) = last.get_mut(idx) {
                    slot.clone_from(&id);
                }
                let Some(data) = data else {
                    tracing::info!(%domain, %id, "redis entry without an m field ignored");
                    continue;
                };
                if data.len() > max_message_bytes {
                    tracing::info!(%domain, %id, len = data.len(), "oversized redis entry ignored");
                    continue;
                }
                let msg = Inbound {
                    domain: domain.clone(),
                    data,
                };
                if inbound.send(msg).await.is_err() {
                    return;
                }
            }
        }
    }
}

type Entries = Vec<(String, Option<Vec<u8>>)>;

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn items_of(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// Parses an `XREAD` reply (RESP2 arrays or RESP3 maps) into
/// `(stream key, [(entry id, m field)])`. Anything malformed is skipped.
fn streams_of(reply: Value) -> Vec<(Vec<u8>, Entries)> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Map(m) => m,
        Value::Array(a) => a
            .into_iter()
            .filter_map(|s| {
                let mut it = items_of(s).into_iter();
                Some((it.next()?, it.next()?))
            })
            .collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, entries)| {
            let key = bytes_of(&k)?;
            let parsed = items_of(entries)
                .into_iter()
                .filter_map(|e| {
                    let mut it = items_of(e).into_iter();
                    let id = bytes_of(&it.next()?)?;
                    let id = String::from_utf8(id).ok()?;
                    let fields = items_of(it.next()?);
                    let data = fields
                        .chunks(2)
                        .find(|f| f.first().and_then(bytes_of).as_deref() == Some(FIELD.as_bytes()))
                        .and_then(|f| f.get(1).and_then(bytes_of));
                    Some((id, data))
                })
                .collect();
            Some((key, parsed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_resp2_xread_reply() {
        let b = |s: &[u8]| Value::BulkString(s.to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            b(b"acp:2:d"),
            Value::Array(vec![
                Value::Array(vec![b(b"1-0"), Value::Array(vec![b(b"m"), b(&[0, 1, 2])])]),
                Value::Array(vec![b(b"2-0"), Value::Array(vec![b(b"x"), b(b"y")])]),
                Value::Nil,
            ]),
        ])]);
        let s = streams_of(reply);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, b"acp:2:d");
        assert_eq!(
            s[0].1,
            vec![("1-0".into(), Some(vec![0, 1, 2])), ("2-0".into(), None)]
        );
        assert!(streams_of(Value::Nil).is_empty());
        assert_eq!(stream_key("loans"), "acp:2:loans");
    }
}
