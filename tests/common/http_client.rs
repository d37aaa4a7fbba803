//! A minimal HTTP/1.1 client for the directory's tests and benchmarks: one
//! request per connection, on loopback, no dependency beyond std.
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
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
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
