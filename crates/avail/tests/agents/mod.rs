//! Agents for avail's tests: each in a directory of its own, idle detection off (the tests
//! that read a desktop's idle time set their agents up themselves).

use avail::agent::{start, AgentHandle};
use tempfile::TempDir;

use crate::support::agent_settings;

/// A running agent of `user` with `account_lines` in its `[account]`, and its directory
/// (removed when dropped, so keep it as long as the agent).
pub async fn start_agent(
    user: &str,
    password: &str,
    account_lines: &str,
) -> (AgentHandle, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = agent_settings(
        dir.path(),
        "idle_source = \"off\"",
        user,
        password,
        account_lines,
    );
    let handle = start(settings).await.expect("agent starts");
    (handle, dir)
}
