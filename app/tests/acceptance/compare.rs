//! `sessionlab compare --quick`, as CI runs it: every strategy through every experiment, every
//! chart and the report written, every correctness expectation holding. Timing numbers are
//! reported, not asserted.
use sessionlab::{
    compare::{CompareArgs, compare},
    session::Backend,
};

#[tokio::test]
async fn the_quick_comparison_produces_every_figure_and_every_expectation_holds() {
    let out = tempfile::tempdir().unwrap();
    // The build comparison, against this very build: the machinery `make compare-rev` runs
    // against an earlier commit.
    let args = CompareArgs {
        quick: true,
        out: out.path().to_owned(),
        strategies: Vec::new(),
        baseline: Some(env!("CARGO_BIN_EXE_sessionlab").into()),
        baseline_strategies: vec![Backend::Mysql],
    };
    let outcome = compare(&args, env!("CARGO_BIN_EXE_sessionlab").into(), "sessionlab compare --quick").await.unwrap();

    // `memory` (the problem, not a strategy) runs its own experiment; every other, all of them;
    // `sticky`, `cookie` and `jwt` once more without their revocation layer, and `sticky` pinned
    // by address.
    assert_eq!(outcome.reports.len(), Backend::ALL.len() - 1 + 4, "every strategy was measured");
    let unshared = outcome.unshared.as_ref().expect("memory was measured");
    assert_eq!(unshared.requests, 30 * unshared.users as u64);
    let failed: Vec<_> =
        outcome.checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.strategy, c.what)).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for figure in ["latency.svg", "ops-per-request.svg", "survival.svg", "cookie-size.svg"] {
        let svg = std::fs::read_to_string(out.path().join("img").join(figure)).unwrap();
        assert!(svg.starts_with("<svg") && svg.len() > 2000, "{figure} is empty");
        for backend in Backend::ALL.into_iter().filter(|b| *b != Backend::Memory) {
            assert!(svg.contains(backend.as_str()), "{figure} does not show {backend}");
        }
    }
    let results = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    for section in [
        "## Summary",
        "## 0. The problem: `memory`",
        "## 1.",
        "## 2.",
        "## 3.",
        "## 4.",
        "## 5.",
        "## 6.",
        "## 7.",
        "## 8.",
        "**Machine:**",
        "÷ `actix-redis`",
        "### With and without the revocation layer",
        "| `jwt, revocation off` |",
        "### How the load spreads over the replicas, before and after the kill",
        "| `sticky, by address` |",
        "### A server added, then removed",
        "## This build against another",
        "## Redis past one server: a failover under load",
    ] {
        assert!(results.contains(section), "results.md lacks {section}");
    }
    let builds = outcome.profile.as_ref().expect("the build comparison");
    for (backend, this, other) in &builds.strategies {
        for t in [this, other] {
            assert!(t.read_32.rps > 0.0 && t.write_32.rps > 0.0, "{backend}: nothing measured");
            let near =
                |ops: Option<f64>, expected: f64| ops.is_some_and(|ops| (ops - expected).abs() <= 0.02 * expected);
            assert!(near(t.store_ops_per_read, 1.0) && near(t.store_ops_per_write, 2.0), "{backend}: {t:?}");
        }
    }
    assert!(results.contains("| `mysql` | baseline |"), "{results}");

    // The failovers, without WAIT and with it; the checks that WAIT loses nothing are among those
    // above.
    let runs: Vec<(&str, u32)> = outcome.failovers.iter().map(|f| (f.topology.as_str(), f.wait_replicas)).collect();
    assert_eq!(runs, [("sentinel", 0), ("sentinel", 1), ("cluster", 0), ("cluster", 1)]);
    for f in &outcome.failovers {
        assert!(f.chaos.acknowledged_writes > 0 && f.write_32.rps > 0.0, "nothing measured: {f:?}");
    }
    assert_eq!(outcome.checks.iter().filter(|c| c.what.contains("REDIS_WAIT_REPLICAS=1")).count(), 2);
}
