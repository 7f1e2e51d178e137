//! Print the exposition of the built-in rich fixture snapshot (`--openmetrics` for OpenMetrics).
//! `cargo run -p herald-exporter --example render_fixture`
use herald_exporter::fixture::{rich_conn_table, rich_snapshot};
use herald_exporter::{render_snapshot, Config, Format};

fn main() {
    let format = if std::env::args().any(|a| a == "--openmetrics") {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    };
    print!(
        "{}",
        render_snapshot(
            &rich_snapshot(),
            Some(&rich_conn_table()),
            &Config::default(),
            format
        )
    );
}
