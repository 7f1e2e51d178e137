//! A real Prometheus driven from a lab harness: its HTTP query API through curl (the port and
//! the process-group guard that stops a background `lab.sh` are `herald_test_support`'s).

use std::process::Command;

/// GET `url`; the body on a 2xx answer within `timeout_s`.
pub fn http_get(url: &str, timeout_s: u32) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "-f", "--max-time", &timeout_s.to_string(), url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An instant query through the HTTP API: the decoded JSON answer, or the error text.
pub fn query(port: u16, expr: &str) -> Result<serde_json::Value, String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            &format!("http://127.0.0.1:{port}/api/v1/query"),
            "--data-urlencode",
            &format!("query={expr}"),
        ])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "bad answer ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    Ok(v)
}

/// An instant query: Ok(number of series) or Err(error text).
pub fn query_count(port: u16, expr: &str) -> Result<usize, String> {
    let v = query(port, expr)?;
    Ok(match &v["data"]["result"] {
        serde_json::Value::Array(a) => a.len(),
        serde_json::Value::Null => 0,
        _ => 1,
    })
}

/// The value of a single-series instant query.
pub fn query_value(port: u16, expr: &str) -> Option<f64> {
    let v = query(port, expr).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}
