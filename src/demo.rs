pub fn run(_keep: bool) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("todo")
}
