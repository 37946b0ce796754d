//! The Redis connection: one multiplexed connection shared by every call, opened lazily and
//! opened again after it breaks, to the one Redis server given or to the master a set of
//! Sentinels names (so a Sentinel failover is followed by the next call).
//!
//! The service starts and answers health checks while Redis is down (not ready); it does not
//! use redis' `ConnectionManager`, which needs Redis up to be created and always reconnects to
//! the same address.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, RedisResult};
use tokio::sync::Mutex;

/// After a failed connect, calls fail at once for this long instead of each trying again: an
/// outage must not queue every request behind its own connect timeout.
const RETRY_AFTER: Duration = Duration::from_millis(250);

enum Target {
    Direct(redis::Client),
    Sentinel(Box<SentinelClient>),
}

struct Slot {
    target: Target,
    connection: Option<MultiplexedConnection>,
    failed_at: Option<(Instant, String)>,
}

pub struct Store {
    slot: Mutex<Slot>,
    config: AsyncConnectionConfig,
}

impl Store {
    /// One Redis server (`redis://[:password@]host:port[/db]`, `rediss://` for TLS is not built).
    pub fn direct(url: &str, timeout: Duration) -> RedisResult<Self> {
        Ok(Self::new(
            Target::Direct(redis::Client::open(url)?),
            timeout,
        ))
    }

    /// The master named `master` by any of `sentinels` (`redis://host:26379` each).
    pub fn sentinel(sentinels: &[String], master: &str, timeout: Duration) -> RedisResult<Self> {
        let client = SentinelClient::build(
            sentinels.to_vec(),
            master.to_string(),
            None,
            SentinelServerType::Master,
        )?;
        Ok(Self::new(Target::Sentinel(Box::new(client)), timeout))
    }

    fn new(target: Target, timeout: Duration) -> Self {
        Self {
            slot: Mutex::new(Slot {
                target,
                connection: None,
                failed_at: None,
            }),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout),
        }
    }

    /// The shared connection, opened when there is none.
    pub async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        let mut slot = self.slot.lock().await;
        if let Some(connection) = &slot.connection {
            return Ok(connection.clone());
        }
        if let Some((at, why)) = &slot.failed_at {
            if at.elapsed() < RETRY_AFTER {
                return Err(RedisError::from((
                    ErrorKind::IoError,
                    "redis unreachable",
                    why.clone(),
                )));
            }
        }
        let opened = match &mut slot.target {
            Target::Direct(client) => {
                client
                    .get_multiplexed_async_connection_with_config(&self.config)
                    .await
            }
            Target::Sentinel(client) => client.get_async_connection_with_config(&self.config).await,
        };
        match opened {
            Ok(connection) => {
                eprintln!("llmgw-rls: connected to redis");
                slot.failed_at = None;
                slot.connection = Some(connection.clone());
                Ok(connection)
            }
            Err(e) => {
                if slot.failed_at.is_none() {
                    eprintln!("llmgw-rls: cannot reach redis: {e}");
                }
                slot.failed_at = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    /// After an error on a call: drop the connection when the error says it is broken, or that
    /// it reaches a replica (`READONLY`: the master it was opened to lost a failover).
    pub async fn after_error(&self, error: &RedisError) {
        if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.kind() == ErrorKind::ReadOnly
        {
            let mut slot = self.slot.lock().await;
            if slot.connection.take().is_some() {
                eprintln!("llmgw-rls: redis connection dropped: {error}");
            }
        }
    }

    /// Readiness: Redis answers `PING`.
    pub async fn ping(&self) -> Result<(), String> {
        let mut connection = self.connection().await.map_err(|e| e.to_string())?;
        let answer: RedisResult<String> = redis::cmd("PING").query_async(&mut connection).await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) => {
                self.after_error(&e).await;
                Err(e.to_string())
            }
        }
    }
}
