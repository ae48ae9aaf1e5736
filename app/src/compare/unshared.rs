//! The `memory` strategy's one experiment: the problem itself. Users log in through HAProxy and
//! then ask "who am I?" again and again; with sessions in each replica's own memory and plain
//! round robin, only the replica that served a log-in knows it. The other experiments would only
//! measure that same failure in other words, so `memory` runs this one instead.
use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde::Serialize;

use super::{
    Scale,
    load::{User, replica},
};
use crate::lab::Lab;

/// How many logged-in requests found their session, and where.
#[derive(Debug, Clone, Serialize)]
pub struct Unshared {
    pub users: usize,
    pub requests: u64,
    /// Answered as the logged-in user.
    pub found: u64,
    /// Of those, answered by a replica other than the one that served the log-in: none, if the
    /// replicas really share nothing.
    pub found_elsewhere: u64,
    /// Per replica: requests that found the session, requests that did not.
    pub by_replica: BTreeMap<String, (u64, u64)>,
}

impl Unshared {
    pub fn found_share(&self) -> f64 {
        self.found as f64 / self.requests.max(1) as f64
    }
}

/// Requests each user sends after logging in.
const LOOKS: usize = 30;

pub async fn unshared(lab: &Lab, scale: Scale) -> anyhow::Result<Unshared> {
    let users = scale.chaos_users;
    // Sign-ups one after another (each is an argon2 hash, and a replica runs only a few at once),
    // then every user's looks at once, as on a real site: they interleave in HAProxy's rotation.
    let mut looks = tokio::task::JoinSet::new();
    for n in 0..users {
        let (user, home) =
            User::sign_up(lab.url(), format!("unshared{n}_{}", hex::encode(rand::random::<[u8; 3]>()))).await?;
        let base = lab.url().to_owned();
        looks.spawn(async move { look(&base, &user).await.map(|answers| (home, answers)) });
    }
    let mut result = Unshared { users, requests: 0, found: 0, found_elsewhere: 0, by_replica: BTreeMap::new() };
    while let Some(run) = looks.join_next().await {
        let (home, answers) = run??;
        for (replica, found) in answers {
            result.requests += 1;
            let cell = result.by_replica.entry(replica.clone()).or_default();
            if found {
                result.found += 1;
                result.found_elsewhere += u64::from(replica != home);
                cell.0 += 1;
            } else {
                cell.1 += 1;
            }
        }
    }
    Ok(result)
}

/// `GET /api/me`, `LOOKS` times: for each, the replica that answered and whether it knew the user.
async fn look(base: &str, user: &User) -> anyhow::Result<Vec<(String, bool)>> {
    let mut answers = Vec::with_capacity(LOOKS);
    for _ in 0..LOOKS {
        let res = user.http.get(format!("{base}/api/me")).send().await?;
        let found = match res.status() {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => false,
            other => anyhow::bail!("GET /api/me answered {other}"),
        };
        answers.push((replica(&res), found));
    }
    Ok(answers)
}
