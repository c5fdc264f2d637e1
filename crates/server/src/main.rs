use baton_server::cli::{self, Cli, Command};
use baton_server::config::LogFormat;
use baton_server::Application;
use clap::Parser;
use tracing_subscriber::EnvFilter;

// A request allocates and frees many small buffers on whichever worker thread runs it;
// glibc's malloc took about 16% of the CPU of a refresh load in that (perf, 2026-12-03).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match cli.config.log_format {
        LogFormat::Json => subscriber.json().init(),
        LogFormat::Pretty => subscriber.init(),
    }
    let result = match cli.command {
        None | Some(Command::Serve) => serve(cli.config).await,
        Some(command) => cli::run(cli.config, command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: baton_server::config::Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until_stopped().await?;
    Ok(())
}
