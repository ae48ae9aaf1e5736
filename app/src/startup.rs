//! Builds the app from typed settings: the database, the session store, the HTTP server.
use std::net::TcpListener;

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::{catalog::Catalog, config::Settings, db, routes, session, users};

/// Facts about this replica every page and log line shows.
#[derive(Debug, Clone)]
pub struct AppInfo {
    pub replica: String,
    pub backend: session::Backend,
    /// `SESSION_REVOCATION`: whether the stateless strategies run with their revocation layer.
    pub revocation: bool,
    /// The revocation list lives in Redis (`REDIS_URL` is set), not in the app database.
    pub revocation_in_redis: bool,
    /// `REDIS_URL` names Redis Sentinel or Redis Cluster rather than one server.
    pub redis_topology: crate::lab::RedisTopology,
    pub cookie_secure: bool,
    /// Sessions older than this are over, however active (every strategy).
    pub absolute_timeout: std::time::Duration,
    /// Sessions unused for this long are over.
    pub idle_timeout: std::time::Duration,
    /// Unix seconds when this process started: the dashboard tells a restarted replica by it.
    pub started_at: i64,
    /// The proxies whose `X-Forwarded-For` entries name the client.
    pub trusted_proxies: crate::client_addr::TrustedProxies,
}

pub struct Application {
    server: Server,
    port: u16,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let csrf_key = web::Data::new(routes::CsrfKey::from_settings(&settings)?);
        let db = db::Db::open(settings.database_url.expose())?;
        let demo = if settings.seed_demo_users {
            tokio::task::spawn_blocking(users::demo_accounts).await??
        } else {
            Vec::new()
        };
        let products = db::prepare(&db, demo).await.context("could not prepare the app database (DATABASE_URL)")?;
        let layer = session::Layer::build(&settings, &db).await?;
        db::upkeep::spawn(db.clone(), settings.sweep_interval);
        let listener = TcpListener::bind(settings.listen_addr)
            .with_context(|| format!("could not listen on LISTEN_ADDR={}", settings.listen_addr))?;
        let port = listener.local_addr()?.port();

        let info = web::Data::new(AppInfo {
            replica: settings.replica_id.clone(),
            backend: settings.backend,
            revocation: settings.revocation,
            revocation_in_redis: settings.revocation_redis.is_some(),
            redis_topology: crate::lab::RedisTopology::of_url(settings.redis_url.expose()),
            cookie_secure: settings.cookie_secure,
            absolute_timeout: settings.absolute_timeout,
            idle_timeout: settings.idle_timeout,
            started_at: session::unix_now(),
            trusted_proxies: settings.trusted_proxies.clone(),
        });
        // sessionlab's own middleware finds its store here; the stock stack carries its own.
        let store = match &layer {
            session::Layer::Own(store) => Some(web::Data::from(store.clone())),
            session::Layer::Stock(_) => None,
        };
        let layer = web::Data::new(layer);
        let metrics = web::Data::new(crate::metrics::handle());
        crate::users::limit_concurrent_hashes(settings.password_hash_concurrency);
        let throttle = web::Data::new(crate::throttle::Throttle::new(db.clone(), settings.sign_ups_per_address));
        let lab_controls = web::Data::new(routes::lab::LabControls {
            admin_token: settings.admin_token.clone(),
            haproxy: settings.haproxy_admin_addr.as_deref().map(crate::haproxy_admin::HaproxyAdmin::new),
            lab_supervisor: settings.lab_supervisor_pid,
        });
        let db = web::Data::new(db);
        let catalog = web::Data::new(Catalog::new(products));
        tracing::info!(replica = %settings.replica_id, backend = %settings.backend, port, "listening");

        let replica = settings.replica_id.clone();
        let server = HttpServer::new(move || {
            let app = App::new()
                .wrap(from_fn(routes::render_html_errors))
                .wrap(routes::security_headers(&replica))
                .wrap(TracingLogger::<routes::AccessLog>::new())
                .app_data(info.clone())
                .app_data(layer.clone())
                .app_data(db.clone())
                .app_data(throttle.clone())
                .app_data(lab_controls.clone())
                .app_data(metrics.clone())
                .app_data(csrf_key.clone())
                .app_data(catalog.clone());
            let app = match &store {
                Some(store) => app.app_data(store.clone()),
                None => app,
            };
            app.configure(|cfg| routes::configure(cfg, &layer))
        })
        // HAProxy keeps connections to the replicas alive and reuses them. The replica must not
        // be the side that closes an idle one: a request HAProxy sends on it as it closes fails,
        // and a POST without an idempotency key is not retried. HAProxy purges its idle server
        // connections within seconds, so it always closes first.
        .keep_alive(std::time::Duration::from_secs(75));
        let server = match settings.http_workers {
            Some(workers) => server.workers(workers),
            None => server,
        };
        let server = server.listen(listener)?.run();
        Ok(Self { server, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        Ok(self.server.await?)
    }
}
