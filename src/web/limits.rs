//! Connection and time limits of the HTTP server (SPEC section 4): a client that sends its request
//! too slowly gets 408 after `EVENTMILL_REQUEST_TIMEOUT_MS`, and at most `EVENTMILL_MAX_CONNECTIONS`
//! connections are open at once; one more is answered 503 and closed at once, so a flood of
//! connections (slow-loris, or 10,000 clients at once) costs a bounded amount of memory and file
//! descriptors instead of growing until the process dies.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::serve::Listener;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};

/// What a connection over the cap is told before it is closed.
const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
Content-Length: 87\r\nConnection: close\r\n\r\n\
{\"error\":\"unavailable\",\"message\":\"too many open connections; retry in a second please\"}";

/// A TCP listener that keeps at most `max` connections open.
pub struct CappedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl CappedListener {
    pub fn new(inner: TcpListener, max: usize) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(max.max(1))) }
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => return (CappedStream { stream, _permit: permit }, addr),
                Err(_) => {
                    // Best effort, never waiting: the socket's send buffer takes this at once.
                    let _ = stream.try_write(OVER_CAPACITY);
                    tracing::debug!(%addr, "connection refused: EVENTMILL_MAX_CONNECTIONS reached");
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection; its slot is given back when it closes.
pub struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for CappedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
