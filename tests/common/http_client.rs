//! A minimal HTTP/1.1 client for the directory's tests and benchmarks, on
//! loopback, with std alone (one request per connection, or kept alive),
//! and the server side's one helper: an axum router on a loopback port.
#![allow(dead_code)]

use std::io::{Error, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// One request on its own connection: (status, body), or the I/O error
/// (refused, reset, a response cut short) when the server failed.
pub fn try_request(
    server: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), Error> {
    let mut stream = TcpStream::connect(server)?;
    let body = body.unwrap_or_default();
    let head = request_head(method, path, token, body.len(), "Connection: close\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) before reading a large body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let cut = || Error::other("response cut short");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(cut)?;
    let headers = String::from_utf8_lossy(&response[..split]).to_lowercase();
    let status = headers
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(cut)?;
    let mut body = response[split + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        body = dechunk(&body).ok_or_else(cut)?;
    }
    Ok((status, body))
}

/// A request's line and headers, `extra` among them.
fn request_head(
    method: &str,
    path: &str,
    token: Option<&str>,
    body_len: usize,
    extra: &str,
) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n"
    ));
    head
}

/// Serves `app` on a loopback port, on a runtime in a thread of its own;
/// its address.
pub fn serve_on_loopback(app: axum::Router) -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind loopback");
            sender
                .send(listener.local_addr().expect("address"))
                .expect("send");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    receiver.recv().expect("server address")
}

/// [`try_request`] where the server must answer.
pub fn request(
    server: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, Vec<u8>) {
    try_request(server, method, path, token, body).expect("HTTP request")
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).ok()?, 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(line_end + 2..line_end + 2 + size)?);
        body = body.get(line_end + 2 + size + 2..)?;
    }
}

/// One kept-alive connection (as a load generator or a real client holds
/// one): requests one after another, each answer read by its
/// `Content-Length`.
pub struct KeepAlive {
    server: SocketAddr,
    stream: Option<std::io::BufReader<TcpStream>>,
}

impl KeepAlive {
    /// A connection to `server`, opened on first use.
    pub fn new(server: SocketAddr) -> KeepAlive {
        KeepAlive {
            server,
            stream: None,
        }
    }

    /// One request: (status, body); after an error the next request opens
    /// a new connection.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), Error> {
        let answer = self.exchange(method, path, token, body);
        if answer.is_err() {
            self.stream = None;
        }
        answer
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), Error> {
        use std::io::BufRead;
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.server)?;
            stream.set_nodelay(true)?;
            self.stream = Some(std::io::BufReader::new(stream));
        }
        let reader = self
            .stream
            .as_mut()
            .ok_or_else(|| Error::other("no stream"))?;
        let body = body.unwrap_or_default();
        let head = request_head(method, path, token, body.len(), "");
        let stream = reader.get_mut();
        stream.write_all(&[head.as_bytes(), body].concat())?;
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status = status_line
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| Error::other("no status line"))?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(Error::other("connection closed in the headers"));
            }
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("content-length:") {
                length = value.trim().parse().map_err(Error::other)?;
            }
            if line.starts_with("transfer-encoding:") {
                return Err(Error::other("chunked answers are not read here"));
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer)?;
        Ok((status, answer))
    }
}
