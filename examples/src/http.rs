//! A minimal HTTP/1.1 client for a node's sidecar API: one JSON request per
//! connection, bearer token, `Connection: close`. Enough for the examples;
//! a real agent would use any HTTP library. Bodies are the node's own API
//! types ([`acp_node::surface::api::types`]).

use std::net::SocketAddr;

use acp_node::surface::api::types::ErrorBody;
use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `method path` with an optional JSON body; returns the status code
/// and the answer read as `T`. An error status fails with the API's error
/// code and message.
pub async fn request<T: DeserializeOwned>(
    api: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
) -> anyhow::Result<(u16, T)> {
    let body = match body {
        Some(b) => serde_json::to_string(b)?,
        None => String::new(),
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(api)
        .await
        .with_context(|| format!("connecting to the API on {api}"))?;
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).map_err(|_| anyhow!("answer is not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP answer"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("chunked answers are not supported by this small client");
    }
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("no status code in {head:?}"))?;
    if !(200..300).contains(&status) {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => bail!(
                "the API refused {method} {path} ({status}): {} ({})",
                error.message,
                error.code
            ),
            Err(_) => bail!("the API answered {status} to {method} {path}"),
        }
    }
    let answer = serde_json::from_str(body)
        .with_context(|| format!("reading the answer to {method} {path}"))?;
    Ok((status, answer))
}
