//! The webrtc runtime: tokio's, except that every UDP socket gets larger kernel buffers. The
//! stock 208 KiB receive buffer overflows under a bulk transfer on loopback; each lost datagram
//! then costs an SCTP recovery (its minimum RTO is 1 s), which made throughput erratic.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime, TokioRuntime,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug)]
pub(crate) struct BufferedRuntime {
    inner: TokioRuntime,
    /// SO_RCVBUF / SO_SNDBUF asked for; the kernel caps it (net.core.rmem_max / wmem_max).
    socket_buffer_bytes: usize,
}

impl BufferedRuntime {
    pub fn new(socket_buffer_bytes: usize) -> Self {
        BufferedRuntime { inner: TokioRuntime, socket_buffer_bytes }
    }
}

impl Runtime for BufferedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(&self, pool: usize, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(pool, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        if self.socket_buffer_bytes > 0 {
            let s = socket2::SockRef::from(&socket);
            // Best effort: a refused size leaves the kernel default, which still works.
            let _ = s.set_recv_buffer_size(self.socket_buffer_bytes);
            let _ = s.set_send_buffer_size(self.socket_buffer_bytes);
        }
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(&'a self, remote: SocketAddr) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.inner.connect_tcp(remote)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
