//! A server started from a shell whose soft open-file limit is low (`ulimit -n`, often
//! 1,024) raises it to the hard limit, so its connections are not held far below what
//! the process may open. The server process is this test binary run again under
//! `ulimit -Sn 512`, with `SERVER_ENV` set.
#![cfg(target_os = "linux")]

use phx_channels::Endpoint;
use std::process::Command;

/// Set in the child process: its `report_the_open_file_limits` starts an endpoint.
const SERVER_ENV: &str = "PHX_OPEN_FILES_TEST_SERVER";

/// This process's soft and hard open-file limits, from `/proc/self/limits`.
fn open_file_limits() -> (String, String) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let mut numbers = line["Max open files".len()..].split_whitespace();
    (numbers.next().unwrap().to_owned(), numbers.next().unwrap().to_owned())
}

/// The child's part; does nothing in an ordinary test run.
#[test]
fn report_the_open_file_limits() {
    if std::env::var_os(SERVER_ENV).is_none() {
        return;
    }
    let (soft, hard) = open_file_limits();
    println!("before: {soft} {hard}");
    let endpoint = Endpoint::builder().bind("127.0.0.1:0").start().unwrap();
    let (soft, hard) = open_file_limits();
    println!("after: {soft} {hard}");
    endpoint.shutdown();
}

#[test]
fn a_low_soft_open_file_limit_is_raised_to_the_hard_one_at_start() {
    let (_, hard) = open_file_limits();
    if hard == "unlimited" || hard.parse::<u64>().unwrap() <= 512 {
        return eprintln!("the hard open-file limit ({hard}) leaves nothing to raise 512 to");
    }
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn 512 && exec "$0" report_the_open_file_limits --exact --nocapture --test-threads=1"#)
        .arg(std::env::current_exe().unwrap())
        .env(SERVER_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the server process failed: {stdout}");
    assert!(stdout.contains(&format!("before: 512 {hard}")), "started under ulimit -Sn 512: {stdout}");
    assert!(stdout.contains(&format!("after: {hard} {hard}")), "the soft limit is raised to the hard one: {stdout}");
}
