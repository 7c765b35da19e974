//! The local control channel: JSON lines over TCP on `control_addr` (loopback).
//!
//! One request per line, one JSON answer per line. It is deliberately small:
//! the full HTTP API is a separate layer over the same [`NodeHandle`].
//!
//! ```text
//! {"op":"submit","hex":"<canonical message bytes>"}  -> {"ok":true,"id":"1e20..","new":true}
//! {"op":"status"}                                    -> {"ok":true,"peer_id":..,"messages":..}
//! {"op":"ids","domain":"fraud.detection"}            -> {"ok":true,"ids":[..]}
//! {"op":"has","id":"1e20.."}                         -> {"ok":true,"engine":true,"store":true}
//! {"op":"resolution","proposal":"1e20.."}            -> {"ok":true,"status":"approved",..}
//! {"op":"dial","addr":"/ip4/127.0.0.1/tcp/7400/p2p/12D3.."}
//! ```
//!
//! Errors are `{"ok":false,"error":"<one line>"}`.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::service::{NodeHandle, Query};
use crate::surface::api::types::{ControlOk, ControlRefusal, ControlSubmitted};

/// Longest request line: a hex-encoded message of the largest kind plus room.
pub const MAX_LINE: usize = 2 * acp_protocol::codec::MAX_MESSAGE_BYTES + 4096;
/// Most concurrent control connections.
pub const MAX_CONNECTIONS: usize = 64;

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Connecting, reading or writing failed.
    #[error("control api {addr}: {source}")]
    Io {
        /// The API address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The answer was not JSON.
    #[error("control api {0}: malformed answer")]
    Malformed(SocketAddr),
    /// The node answered with an error.
    #[error("{0}")]
    Refused(String),
}

/// Serves the control channel until the listener fails.
pub async fn serve(listener: TcpListener, handle: NodeHandle) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many control connections; refused");
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, handle).await {
                tracing::debug!(%peer, error = %e, "control connection ended");
            }
            drop(permit);
        });
    }
}

async fn connection(stream: TcpStream, handle: NodeHandle) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let mut line = Vec::new();
        let n = (&mut rd)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let too_long = !line.ends_with(b"\n") && n >= MAX_LINE;
        let answer = if too_long {
            err("request line too long")
        } else {
            dispatch(&line, &handle).await
        };
        let mut out = answer.to_string().into_bytes();
        out.push(b'\n');
        wr.write_all(&out).await?;
        if too_long {
            return Ok(());
        }
    }
}

fn err(e: impl std::fmt::Display) -> Value {
    to_json(&ControlRefusal::new(e))
}

fn to_json(answer: &impl Serialize) -> Value {
    // The answer types hold plain fields and string keys, so serializing
    // them cannot fail; null would only mark a broken answer type.
    serde_json::to_value(answer).unwrap_or(Value::Null)
}

/// Answers one request line.
pub async fn dispatch(line: &[u8], handle: &NodeHandle) -> Value {
    // Read field by field, so that each missing or mistyped one gets its
    // own message; the queries are read whole.
    #[derive(Deserialize)]
    struct Op {
        op: String,
    }
    #[derive(Deserialize)]
    struct Hex {
        hex: String,
    }
    #[derive(Deserialize)]
    struct Addr {
        addr: String,
    }
    let req: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return err(format!("request is not JSON: {e}")),
    };
    let Ok(Op { op }) = Op::deserialize(&req) else {
        return err("request needs \"op\"");
    };
    match op.as_str() {
        "submit" => {
            let Ok(Hex { hex }) = Hex::deserialize(&req) else {
                return err("submit needs \"hex\"");
            };
            let bytes = match hex::decode(hex.trim()) {
                Ok(b) => b,
                Err(_) => return err("\"hex\" is not hexadecimal"),
            };
            match handle.submit(bytes).await {
                Ok(s) => to_json(&ControlSubmitted {
                    ok: true,
                    id: s.id,
                    new: s.new,
                }),
                Err(e) => err(e),
            }
        }
        "dial" => {
            let addr = match Addr::deserialize(&req).map(|a| a.addr.parse()) {
                Ok(Ok(a)) => a,
                _ => return err("dial needs a multiaddr in \"addr\""),
            };
            match handle.dial(addr).await {
                Ok(()) => to_json(&ControlOk { ok: true }),
                Err(e) => err(e),
            }
        }
        _ => match serde_json::from_value::<Query>(req) {
            Ok(q) => match handle.answer(q).await {
                Ok(a) => to_json(&a),
                Err(e) => err(e),
            },
            Err(e) => err(format!("bad request: {e}")),
        },
    }
}

/// Sends one request to a node's control channel and returns the answer
/// (an error when the node answered `"ok": false`).
pub async fn call(addr: SocketAddr, req: &Value) -> Result<Value, ControlError> {
    call_as(addr, req).await
}

/// [`call`], the answer read as `T` (e.g.
/// [`NodeStatus`](crate::surface::api::types::NodeStatus)).
pub async fn call_as<T: DeserializeOwned>(
    addr: SocketAddr,
    req: &impl Serialize,
) -> Result<T, ControlError> {
    let io = |source| ControlError::Io { addr, source };
    let stream = TcpStream::connect(addr).await.map_err(io)?;
    let (rd, mut wr) = stream.into_split();
    let mut line = serde_json::to_vec(req).map_err(|_| ControlError::Malformed(addr))?;
    line.push(b'\n');
    wr.write_all(&line).await.map_err(io)?;
    let mut rd = BufReader::new(rd);
    let mut answer = String::new();
    rd.read_line(&mut answer).await.map_err(io)?;
    read_answer(&answer).map_err(|e| e.unwrap_or(ControlError::Malformed(addr)))
}

/// Reads one answer line: `Err(Some)` for a refusal, `Err(None)` when it
/// is not an answer of type `T`.
pub fn read_answer<T: DeserializeOwned>(line: &str) -> Result<T, Option<ControlError>> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        ok: bool,
        #[serde(default)]
        error: Option<String>,
    }
    let v: Value = serde_json::from_str(line).map_err(|_| None)?;
    let env = Envelope::deserialize(&v).map_err(|_| None)?;
    if !env.ok {
        return Err(Some(ControlError::Refused(
            env.error.unwrap_or_else(|| "unknown error".to_owned()),
        )));
    }
    T::deserialize(v).map_err(|_| None)
}
