//! Slow clients (slowloris): a client that sends its request headers a byte at a time must not
//! hold a connection for ever. HAProxy's `timeout http-request` bounds the time a request's
//! headers may take, whatever the client trickles in between; meanwhile the site keeps answering.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sessionlab::session::Backend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::harness::{Client, spawn_lab};

/// haproxy.cfg's `timeout http-request`.
const HEADER_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off_and_the_site_keeps_answering() {
    let lab = spawn_lab(Backend::Cookie).await;
    let address = lab.url().trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: sessionlab\r\n").await.unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    let client = Client::new(lab.url());
    let mut closed_after = None;
    // One more header line a second from every slow client: each line resets an inactivity
    // timeout, never the deadline for the whole request.
    while started.elapsed() < HEADER_DEADLINE * 2 {
        assert_eq!(client.get("/healthz").await.status, StatusCode::OK, "the site stopped answering");
        let mut open = 0;
        for stream in &mut slow {
            if stream.write_all(b"X-Slow: 1\r\n").await.is_ok() && still_open(stream).await {
                open += 1;
            }
        }
        if open == 0 {
            closed_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let closed_after = closed_after.expect("HAProxy let trickling clients hold their connections");
    assert!(closed_after >= HEADER_DEADLINE - Duration::from_secs(1), "cut off too early: {closed_after:?}");
    lab.shutdown().await;
}

/// False once HAProxy has answered (408) or closed the connection.
async fn still_open(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(Duration::from_millis(5), stream.read(&mut buf)).await {
        Err(_) => true,      // nothing to read: still waiting for our headers
        Ok(Ok(0)) => false,  // closed
        Ok(Ok(_)) => false,  // an answer (408 Request Timeout) before the headers were complete
        Ok(Err(_)) => false, // reset
    }
}
