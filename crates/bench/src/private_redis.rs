//! A private `redis-server` for one benchmark run, so that the services' consumer groups and
//! streams start empty and nobody else's events reach them.

use std::{
    io::{Read as _, Write as _},
    process::{Child, Command as Process, Stdio},
    time::{Duration, Instant},
};

/// A Redis server for the run: its own process when `redis-server` is installed.
pub(crate) struct PrivateRedis {
    /// Its URL.
    pub(crate) url: String,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port unless `given`; without `redis-server`, database `fallback_db`
    /// of the local server.
    pub(crate) fn start(given: &Option<String>, fallback_db: u8) -> Self {
        if let Some(url) = given {
            return Self { url: url.clone(), child: None };
        }
        for _ in 0..5 {
            let Ok(port) = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()) else { break };
            let spawned = Process::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no", "--dir", "/tmp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let Ok(mut child) = spawned else { break };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if redis_pong(port) {
                    return Self { url: format!("redis://127.0.0.1:{port}/0"), child: Some(child) };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let url = format!("redis://127.0.0.1:6379/{fallback_db}");
        eprintln!("no private redis-server could be started; using {url}");
        Self { url, child: None }
    }
}

fn redis_pong(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok() && stream.read(&mut answer).map(|n| answer[..n].starts_with(b"+PONG")).unwrap_or(false)
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
