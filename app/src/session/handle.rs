use std::{cell::RefCell, future::Ready, rc::Rc, sync::Arc};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload};

use super::{
    Backend, Loaded, Saved, SessionData, SessionId, SessionStore, StoreError,
    actix_stock::bridge as stock,
    device::{self, Client, Listed},
    idempotency::{self, IdempotencyKey, KeyError},
    store::index_of,
};

/// How many times a write that conflicts with a concurrent one is re-applied before giving up.
pub const MAX_ATTEMPTS: u32 = 25;

/// 1, 2, 4 … up to 32 ms, plus up to as much again at random, so racing writers spread out.
fn backoff(attempt: u32) -> std::time::Duration {
    let base = 1u64 << attempt.min(5);
    std::time::Duration::from_millis(base + rand::random_range(0..=base))
}

/// The session of the current request, as handlers see it: sessionlab's own layer, or the stock
/// actix stack ([`super::actix_stock`]) for the strategies that measure it. Handlers cannot tell.
#[derive(Clone)]
pub struct Session(Kind);

#[derive(Clone)]
enum Kind {
    Own(Own),
    /// The request itself: actix-session and actix-identity keep their state in its extensions.
    Stock(HttpRequest),
}

/// sessionlab's own session handle.
///
/// Reads are free (the middleware loaded the state already). Every write goes to the store
/// before the handler answers, so its failure becomes the response (413, 503) and a success is
/// really stored when the client sees it. A guest who only browses never gets a session.
#[derive(Clone)]
pub(crate) struct Own(Rc<RefCell<Inner>>);

struct Inner {
    store: Arc<dyn SessionStore>,
    /// Who sent this request: the device record of a log-in or a touch.
    client: Client,
    /// The idle timeout, which sets how often the device record is touched.
    idle: std::time::Duration,
    current: Option<Loaded>,
    /// The credential the client holds now: the one it sent, or the one this request issued.
    credential: Option<String>,
    cookie: CookieChange,
    refresh: CookieChange,
    /// The store did not answer when the request's session was loaded, and the route can do
    /// without it (the dashboard, the docs): the session is unknown, not absent.
    unreadable: bool,
}

/// What [`Own::try_save`] stored.
struct Written {
    data: SessionData,
    saved: Saved,
    /// The session did not exist before this write.
    created: bool,
    /// The device record was refreshed: the user's index should know.
    touched: bool,
}

/// What the middleware must do with the client's cookie once the handler is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieChange {
    Keep,
    Set(String),
    Remove,
}

/// What the inspector shows about a session. Nothing here is secret.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub backend: Backend,
    pub fingerprint: String,
    pub location: String,
    pub state_bytes: usize,
    pub ttl_seconds: u64,
    /// The credential as its store describes it (a JWT's header and claims), if it does.
    pub token: Option<serde_json::Value>,
}

/// What a session handle needs to know about the request besides the session.
#[derive(Clone)]
pub(crate) struct Context {
    pub store: Arc<dyn SessionStore>,
    pub client: Client,
    pub idle: std::time::Duration,
}

impl Own {
    pub(crate) fn new(cx: Context, current: Option<Loaded>, credential: Option<String>) -> Self {
        let credential = credential.filter(|_| current.is_some());
        Self(Rc::new(RefCell::new(Inner {
            store: cx.store,
            client: cx.client,
            idle: cx.idle,
            current,
            credential,
            cookie: CookieChange::Keep,
            refresh: CookieChange::Keep,
            unreadable: false,
        })))
    }

    /// The request's session could not be loaded (the store is down). Its cookies are kept as
    /// they are, and nothing can be written through it.
    pub(crate) fn unreadable(cx: Context) -> Self {
        let session = Self::new(cx, None, None);
        session.0.borrow_mut().unreadable = true;
        session
    }

    pub fn is_unreadable(&self) -> bool {
        self.0.borrow().unreadable
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.is_unreadable() {
            return Err(StoreError::Unavailable(anyhow::anyhow!("the session could not be loaded")));
        }
        Ok(())
    }

    /// A session that just ended by itself (past its absolute lifetime): the client's cookies go.
    pub(crate) fn ended(cx: Context) -> Self {
        let session = Self::new(cx, None, None);
        {
            let mut inner = session.0.borrow_mut();
            inner.cookie = CookieChange::Remove;
            inner.refresh = CookieChange::Remove;
        }
        session
    }

    /// The session as a refresh just restored it: both cookies change.
    pub(crate) fn refreshed(cx: Context, refreshed: super::Refreshed) -> Self {
        let session = Self::new(cx, Some(refreshed.loaded), None);
        {
            let mut inner = session.0.borrow_mut();
            inner.credential = Some(refreshed.saved.cookie.clone());
            inner.cookie = CookieChange::Set(refreshed.saved.cookie);
            inner.refresh = CookieChange::Set(refreshed.refresh_token.token);
        }
        session
    }

    /// Reads the state without copying it. An absent session reads as empty data.
    pub fn read<T>(&self, f: impl FnOnce(&SessionData) -> T) -> T {
        let inner = self.0.borrow();
        match &inner.current {
            Some(loaded) => f(&loaded.data),
            None => f(&SessionData::default()),
        }
    }

    pub fn exists(&self) -> bool {
        self.0.borrow().current.is_some()
    }

    /// Applies `change` to the state and stores the result; creates the session if there was
    /// none. If `change` fails, nothing is stored.
    ///
    /// Against a store with compare-and-set, a write that lost a race to another request of the
    /// same session is not dropped: the fresh state is read again and `change` re-applied to it,
    /// up to [`MAX_ATTEMPTS`] times with a short, jittered pause. Only then is the conflict
    /// reported (409): never a silent loss.
    pub async fn update<T, E>(&self, mut change: impl FnMut(&mut SessionData) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.writable()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (store, id, mut data, version) = self.snapshot();
            let out = change(&mut data)?;
            match self.try_save(&store, &id, data, version).await {
                Ok(written) => {
                    self.adopt(&store, id, written).await?;
                    return Ok(out);
                }
                Err(StoreError::Conflict) if attempt < MAX_ATTEMPTS && version.is_some() => {
                    tokio::time::sleep(backoff(attempt)).await;
                    match store.reload(&id).await? {
                        Some(fresh) => self.0.borrow_mut().current = Some(fresh),
                        // Deleted meanwhile (logged out elsewhere): nothing left to update.
                        None => return Err(StoreError::Conflict.into()),
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// One attempt at storing `data` as session `id` over `version`.
    async fn try_save(
        &self,
        store: &Arc<dyn SessionStore>,
        id: &SessionId,
        mut data: SessionData,
        version: Option<u64>,
    ) -> Result<Written, StoreError> {
        // A write is under way anyway: refresh a stale device record with it.
        let touched = {
            let inner = self.0.borrow();
            device::touch_due(&data, inner.idle).then(|| data.device = Some(inner.client.device())).is_some()
        };
        let saved = match store.save(id, &data, version).await {
            // The inspector's list of visits is a teaching aid: it gives way to the cart, so
            // where a strategy's size wall stands does not depend on how often you looked.
            Err(StoreError::TooLarge { .. }) if !data.visits.is_empty() => {
                data.visits.clear();
                store.save(id, &data, version).await
            }
            saved => saved,
        }?;
        Ok(Written { data, saved, created: version.is_none(), touched })
    }

    /// A write the store took becomes this request's session. Errors from here on are not
    /// conflicts of the write: it is stored, and is never applied again.
    async fn adopt(&self, store: &Arc<dyn SessionStore>, id: SessionId, written: Written) -> Result<(), StoreError> {
        let Written { data, saved, created, touched } = written;
        if created && !self.exists() {
            crate::metrics::session_event("created");
        }
        if let Some(index) = store.user_index().filter(|_| touched) {
            index.touch(&id, &data).await?;
        }
        self.commit(id, data, saved);
        Ok(())
    }

    /// Moves the state to a brand-new session ID, applying `change` on the way (log in: the cart
    /// comes along, the user is set). The old ID stops working: fixation protection.
    pub async fn renew<E>(&self, change: impl FnOnce(&mut SessionData)) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        self.writable()?;
        let (store, old_id, mut data, _) = self.snapshot();
        let old_data = self.exists().then(|| data.clone());
        // A log-in starts a new session: its absolute lifetime starts over too.
        data.created_at = super::unix_now();
        change(&mut data);
        data.device = data.user.is_some().then(|| self.0.borrow().client.device());
        let new_id = SessionId::generate();
        let saved = store.save(&new_id, &data, None).await?;
        if let Some(index) = store.user_index() {
            index.add(&new_id, &data).await?;
        }
        let refresh = match store.refresh_tokens() {
            Some(tokens) => tokens.issue(&new_id, &data).await?,
            None => None,
        };
        if let Some(old_data) = old_data {
            store.end(&old_id, &old_data).await?;
        }
        self.commit(new_id, data, saved);
        crate::metrics::session_event("renewed");
        if let Some(issued) = refresh {
            self.0.borrow_mut().refresh = CookieChange::Set(issued.token);
        }
        Ok(())
    }

    /// Destroys the session (log out): the store forgets it and the cookie is removed.
    pub async fn purge(&self) -> Result<(), StoreError> {
        self.writable()?;
        let (store, id, data, _) = self.snapshot();
        // A guest's cookie or token (`cookie`, `jwt`) holds only its cart and opens nothing: the
        // client drops it. Listing it as revoked would let any guest write to the revocation
        // list at will. (At log-in, renewal still ends the guest credential: that write is paid
        // once per log-in, which is throttled.)
        let guest_token = data.user.is_none() && store.backend().keeps_state_in_client();
        if self.exists() && !guest_token {
            store.end(&id, &data).await?;
            crate::metrics::session_event("ended");
        }
        let mut inner = self.0.borrow_mut();
        inner.current = None;
        inner.credential = None;
        inner.cookie = CookieChange::Remove;
        if inner.store.refresh_tokens().is_some() {
            inner.refresh = CookieChange::Remove;
        }
        Ok(())
    }

    /// Trades a refresh token for a new credential (strategies with refresh tokens); `previous`
    /// is the expired credential whose state should carry over. `Ok(false)`: the token is no good.
    pub async fn exchange_refresh(&self, refresh_token: &str, previous: Option<&str>) -> Result<bool, StoreError> {
        let store = self.0.borrow().store.clone();
        let Some(tokens) = store.refresh_tokens() else { return Ok(false) };
        let Some(refreshed) = tokens.refresh(refresh_token, previous).await? else { return Ok(false) };
        let mut inner = self.0.borrow_mut();
        inner.credential = Some(refreshed.saved.cookie.clone());
        inner.cookie = CookieChange::Set(refreshed.saved.cookie);
        inner.refresh = CookieChange::Set(refreshed.refresh_token.token);
        inner.current = Some(refreshed.loaded);
        Ok(true)
    }

    /// The credential the client holds after this request: what `{"token": true}` returns to
    /// API clients, for `Authorization: Bearer`.
    pub fn credential(&self) -> Option<String> {
        self.0.borrow().credential.clone()
    }

    /// A refresh token issued by this request, if any.
    pub fn issued_refresh_token(&self) -> Option<String> {
        match &self.0.borrow().refresh {
            CookieChange::Set(token) => Some(token.clone()),
            _ => None,
        }
    }

    /// The storage key of this session: how "your devices" names it.
    pub fn key(&self) -> Option<String> {
        self.0.borrow().current.as_ref().map(|l| l.id.storage_key())
    }

    /// The logged-in user's sessions, this one included; `None` for a guest.
    pub async fn devices(&self) -> Result<Option<Vec<Listed>>, StoreError> {
        let (store, user) = self.user();
        match user {
            Some(user_id) => index_of(store.as_ref())?.list(user_id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Ends the user's session `key` on every replica; this session itself is logged out like
    /// [`Own::purge`]. `Ok(false)`: the user has no such session (or is a guest).
    pub async fn revoke_device(&self, key: &str) -> Result<bool, StoreError> {
        if self.key().as_deref() == Some(key) {
            self.purge().await?;
            return Ok(true);
        }
        let (store, user) = self.user();
        let revoked = match user {
            Some(user_id) => index_of(store.as_ref())?.revoke(user_id, key).await?,
            None => false,
        };
        if revoked {
            crate::metrics::session_event("revoked");
        }
        Ok(revoked)
    }

    /// Ends every other session of the user; how many there were.
    pub async fn revoke_other_devices(&self) -> Result<usize, StoreError> {
        let (store, user) = self.user();
        let (Some(user_id), Some(mine)) = (user, self.key()) else { return Ok(0) };
        let index = index_of(store.as_ref())?;
        index.revoke_all_but(user_id, &mine).await?;
        let mut revoked = 0;
        for other in index.list(user_id).await?.into_iter().filter(|s| s.key != mine) {
            if index.revoke(user_id, &other.key).await? {
                crate::metrics::session_event("revoked");
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    fn user(&self) -> (Arc<dyn SessionStore>, Option<i64>) {
        let inner = self.0.borrow();
        let user = inner.current.as_ref().and_then(|l| l.data.user.as_ref()).map(|u| u.id);
        (inner.store.clone(), user)
    }

    pub fn info(&self) -> Option<SessionInfo> {
        let inner = self.0.borrow();
        inner.current.as_ref().map(|loaded| SessionInfo {
            backend: inner.store.backend(),
            fingerprint: loaded.id.fingerprint(),
            location: inner.store.location(&loaded.id),
            state_bytes: loaded.state_bytes,
            ttl_seconds: loaded.ttl.as_secs(),
            token: inner.credential.as_deref().and_then(|c| inner.store.inspect_cookie(c)),
        })
    }

    /// Saves an unchanged session whose store asked for it ([`Loaded::refresh_due`]) or whose
    /// device record is stale, unless the handler already wrote or purged it.
    pub(crate) async fn refresh_if_due(&self) -> Result<(), StoreError> {
        let due = {
            let inner = self.0.borrow();
            inner.cookie == CookieChange::Keep
                && inner.current.as_ref().is_some_and(|l| l.refresh_due || device::touch_due(&l.data, inner.idle))
        };
        if due {
            self.update::<(), StoreError>(|_| Ok(())).await?;
        }
        Ok(())
    }

    pub(crate) fn cookie_change(&self) -> CookieChange {
        self.0.borrow().cookie.clone()
    }

    pub(crate) fn refresh_change(&self) -> CookieChange {
        self.0.borrow().refresh.clone()
    }

    /// The client's refresh token is no good: clear its cookie.
    pub(crate) fn drop_refresh_cookie(&self) {
        self.0.borrow_mut().refresh = CookieChange::Remove;
    }

    fn snapshot(&self) -> (Arc<dyn SessionStore>, SessionId, SessionData, Option<u64>) {
        let inner = self.0.borrow();
        let (id, data, version) = match &inner.current {
            Some(loaded) => (loaded.id.clone(), loaded.data.clone(), loaded.version),
            None => (SessionId::generate(), SessionData::new(), None),
        };
        (inner.store.clone(), id, data, version)
    }

    fn commit(&self, id: SessionId, data: SessionData, saved: Saved) {
        let mut inner = self.0.borrow_mut();
        inner.credential = Some(saved.cookie.clone());
        inner.current = Some(Loaded {
            id,
            data,
            state_bytes: saved.state_bytes,
            ttl: saved.ttl,
            refresh_due: false,
            version: saved.version,
        });
        inner.cookie = CookieChange::Set(saved.cookie);
    }
}

impl From<Own> for Session {
    fn from(own: Own) -> Self {
        Session(Kind::Own(own))
    }
}

/// Every handler-facing call, to whichever layer holds the session.
impl Session {
    /// Reads the state without copying it. An absent session reads as empty data.
    pub fn read<T>(&self, f: impl FnOnce(&SessionData) -> T) -> T {
        match &self.0 {
            Kind::Own(own) => own.read(f),
            Kind::Stock(req) => f(&stock::read(req)),
        }
    }

    pub fn exists(&self) -> bool {
        match &self.0 {
            Kind::Own(own) => own.exists(),
            Kind::Stock(req) => stock::exists(req),
        }
    }

    /// Applies `change` to the state and stores the result ([`Own::update`]). On the stock
    /// stack the result is stored after the handler answered, by actix-session.
    pub async fn update<T, E>(&self, mut change: impl FnMut(&mut SessionData) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        match &self.0 {
            Kind::Own(own) => own.update(change).await,
            Kind::Stock(req) => {
                let mut data = stock::read(req);
                let out = change(&mut data)?;
                stock::write(req, &data)?;
                Ok(out)
            }
        }
    }

    /// [`Session::update`] for a request that may carry an `Idempotency-Key`: `change` returns
    /// the answer, which is stored with the key by the same write. A repeat of the request gets
    /// the first answer (`true`: replayed) and changes nothing; the key with another `request`
    /// is refused. Strategies that cannot honour keys ([`idempotency::honoured_by`]) apply the
    /// change every time.
    pub async fn update_once<E>(
        &self,
        key: Option<&IdempotencyKey>,
        request: &str,
        mut change: impl FnMut(&mut SessionData) -> Result<serde_json::Value, E>,
    ) -> Result<(serde_json::Value, bool), E>
    where
        E: From<StoreError> + From<KeyError>,
    {
        let honoured = match &self.0 {
            Kind::Own(own) => idempotency::honoured_by(own.0.borrow().store.backend()),
            Kind::Stock(_) => false,
        };
        let Some(key) = key.filter(|_| honoured) else {
            return self.update(change).await.map(|answer| (answer, false));
        };
        if let Some(found) = self.read(|data| data.replay(key, request)) {
            return Ok((found?, true));
        }
        // Re-checked inside the write: a concurrent copy of this request may have won the race.
        let mut replayed = false;
        let answer = self
            .update::<_, E>(|data| match data.replay(key, request) {
                Some(found) => {
                    replayed = true;
                    Ok(found?)
                }
                None => {
                    replayed = false;
                    let answer = change(data)?;
                    data.remember(key, request, answer.clone());
                    Ok(answer)
                }
            })
            .await?;
        Ok((answer, replayed))
    }

    /// Moves the state to a brand-new session ID, applying `change` on the way ([`Own::renew`]).
    pub async fn renew<E>(&self, change: impl FnOnce(&mut SessionData)) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        match &self.0 {
            Kind::Own(own) => own.renew(change).await,
            Kind::Stock(req) => {
                let mut data = stock::read(req);
                let before = data.user.clone();
                change(&mut data);
                match &data.user {
                    Some(user) if before.as_ref() != Some(user) => stock::login(req, user)?,
                    _ => stock::renew(req),
                }
                Ok(stock::write(req, &data)?)
            }
        }
    }

    /// Destroys the session (log out).
    pub async fn purge(&self) -> Result<(), StoreError> {
        match &self.0 {
            Kind::Own(own) => own.purge().await,
            Kind::Stock(req) => {
                stock::logout(req);
                Ok(())
            }
        }
    }

    /// Trades a refresh token for a new credential ([`Own::exchange_refresh`]).
    pub async fn exchange_refresh(&self, refresh_token: &str, previous: Option<&str>) -> Result<bool, StoreError> {
        match &self.0 {
            Kind::Own(own) => own.exchange_refresh(refresh_token, previous).await,
            Kind::Stock(_) => Ok(false),
        }
    }

    /// Whether this strategy hands out refresh tokens, and its name.
    pub fn issues_refresh_tokens(&self) -> (bool, Backend) {
        match &self.0 {
            Kind::Own(own) => {
                let store = own.0.borrow().store.clone();
                (store.refresh_tokens().is_some(), store.backend())
            }
            Kind::Stock(req) => (false, stock::backend(req)),
        }
    }

    /// The credential the client holds after this request, for `Authorization: Bearer`. The
    /// stock stack has none: its cookie is the only way in.
    pub fn credential(&self) -> Option<String> {
        match &self.0 {
            Kind::Own(own) => own.credential(),
            Kind::Stock(_) => None,
        }
    }

    /// A refresh token issued by this request, if any.
    pub fn issued_refresh_token(&self) -> Option<String> {
        match &self.0 {
            Kind::Own(own) => own.issued_refresh_token(),
            Kind::Stock(_) => None,
        }
    }

    /// The storage key of this session: how "your devices" names it.
    pub fn key(&self) -> Option<String> {
        match &self.0 {
            Kind::Own(own) => own.key(),
            Kind::Stock(_) => None,
        }
    }

    /// The logged-in user's sessions, this one included; `None` for a guest.
    pub async fn devices(&self) -> Result<Option<Vec<Listed>>, StoreError> {
        match &self.0 {
            Kind::Own(own) => own.devices().await,
            Kind::Stock(req) => Err(stock::no_index(req)),
        }
    }

    /// Ends the user's session `key` on every replica ([`Own::revoke_device`]).
    pub async fn revoke_device(&self, key: &str) -> Result<bool, StoreError> {
        match &self.0 {
            Kind::Own(own) => own.revoke_device(key).await,
            Kind::Stock(req) => Err(stock::no_index(req)),
        }
    }

    /// Ends every other session of the user; how many there were.
    pub async fn revoke_other_devices(&self) -> Result<usize, StoreError> {
        match &self.0 {
            Kind::Own(own) => own.revoke_other_devices().await,
            Kind::Stock(req) => Err(stock::no_index(req)),
        }
    }

    pub fn info(&self) -> Option<SessionInfo> {
        match &self.0 {
            Kind::Own(own) => own.info(),
            Kind::Stock(req) => stock::info(req),
        }
    }
}

impl Session {
    /// The store did not answer when this request's session was loaded: who the client is, is
    /// unknown (only routes that can do without a session get one like this).
    pub fn unknown(&self) -> bool {
        match &self.0 {
            Kind::Own(own) => own.is_unreadable(),
            Kind::Stock(_) => false,
        }
    }

    /// The session the middleware loaded for `req`: `None` when it did not get that far (the
    /// store did not answer) or the route is outside its reach.
    pub fn of(req: &HttpRequest) -> Option<Session> {
        req.extensions().get::<Session>().cloned().or_else(|| {
            let stock = req.app_data::<actix_web::web::Data<crate::startup::AppInfo>>()?.backend.is_stock();
            stock.then(|| Session(Kind::Stock(req.clone())))
        })
    }
}

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Session::of(req).ok_or_else(|| {
            actix_web::error::ErrorInternalServerError("route is not wrapped in the session middleware")
        }))
    }
}
