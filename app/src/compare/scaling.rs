//! Adding a server and removing it, as the article puts it: free with a shared store, disruptive
//! with sticky sessions. The lab's spare replica (app4) runs out of rotation; HAProxy's runtime
//! API adds it (`ready`) and removes it (`maint`), as the dashboard's Ready and Remove do.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Serialize;

use super::load::{User, replica};
use crate::{
    haproxy_admin::{Admin, ServerState},
    lab::{Lab, SPARE},
};

/// Users who sign up before the spare is added, and as many after.
const USERS: usize = 12;

#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    /// Users logged in before the spare was added.
    pub users_before: usize,
    /// Of those, still logged in right after it was added.
    pub kept_after_add: usize,
    /// Users who signed up once the spare was in rotation, and how many of them it served.
    pub new_users: usize,
    pub new_on_spare: usize,
    /// Users whose latest request the spare answered when it was removed, and how many of them
    /// were still logged in after.
    pub on_spare_at_removal: usize,
    pub on_spare_kept: usize,
    /// Everyone, after the removal: still logged in, out of all users.
    pub kept_after_remove: usize,
}

/// Whether `user` is logged in, and which replica answered.
async fn me(base: &str, user: &User) -> anyhow::Result<(bool, String)> {
    let res = user.http.get(format!("{base}/api/me")).send().await?;
    Ok((res.status() == StatusCode::OK, replica(&res)))
}

async fn set_spare(lab: &Lab, admin: Admin, state: ServerState) -> anyhow::Result<()> {
    let haproxy = lab.haproxy_admin();
    haproxy.set(SPARE, admin).await?;
    // Ready still waits for a passing health check (every second) before the server is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !haproxy.replicas().await?.iter().any(|s| s.id == SPARE && s.state == state) {
        anyhow::ensure!(Instant::now() < deadline, "HAProxy never put {SPARE} in state {}", state.as_str());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

pub async fn add_and_remove(lab: &Lab) -> anyhow::Result<Scaling> {
    let base = lab.url();
    let name = |prefix: &str, n: usize| format!("{prefix}{n}_{}", hex::encode(rand::random::<[u8; 3]>()));
    let mut before = Vec::new();
    for n in 0..USERS {
        before.push(User::sign_up_with_three_items(base, name("scale", n)).await?);
    }

    set_spare(lab, Admin::Ready, ServerState::Up).await?;
    let mut kept_after_add = 0;
    for user in &before {
        // Three looks each: with round robin that reaches the spare too.
        let mut kept = true;
        for _ in 0..3 {
            kept &= me(base, user).await?.0;
        }
        kept_after_add += usize::from(kept);
    }
    let mut after = Vec::new();
    let mut new_on_spare = 0;
    for n in 0..USERS {
        let (user, served) = User::sign_up(base, name("grown", n)).await?;
        new_on_spare += usize::from(served == SPARE);
        after.push(user);
    }

    let everyone: Vec<&User> = before.iter().chain(&after).collect();
    let mut on_spare = Vec::new();
    for user in &everyone {
        on_spare.push(me(base, user).await?.1 == SPARE);
    }
    set_spare(lab, Admin::Remove, ServerState::Maintenance).await?;
    let (mut kept_after_remove, mut on_spare_kept) = (0, 0);
    for (user, was_on_spare) in everyone.iter().zip(&on_spare) {
        let kept = me(base, user).await?.0;
        kept_after_remove += usize::from(kept);
        on_spare_kept += usize::from(kept && *was_on_spare);
    }
    Ok(Scaling {
        users_before: before.len(),
        kept_after_add,
        new_users: after.len(),
        new_on_spare,
        on_spare_at_removal: on_spare.iter().filter(|s| **s).count(),
        on_spare_kept,
        kept_after_remove,
    })
}
